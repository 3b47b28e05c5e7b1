"""redis-py's client arguments translated into redpool's knobs (see the README's defaults table).

redis-py names its settings after sockets (``socket_timeout``, ``socket_keepalive_options``,
``ssl_ca_certs``, ``retry=Retry(...)``); the core names them after what they do
(``socket_timeout``, ``tcp_keepalive_idle``, ``tls_ca_file``, ``retries``). This module is the
one place that knows both. It holds no default and no rule of a setting: values go to the core as
text with the argument's name, and the core's knob table checks them, its errors naming the
argument the caller actually wrote.
"""

from __future__ import annotations

import socket
import warnings
import ssl as _ssl
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import backoff as _backoff

from .exceptions import ConfigError, IgnoredArgumentWarning

#: redis-py arguments accepted for compatibility that change nothing here: why, and the values
#: that ask for what redpool does anyway. Any other value is ignored with an
#: :class:`IgnoredArgumentWarning` naming the argument: never silently.
IGNORED = {
    "socket_read_size": ("replies are read by the core", (None, 65536)),
    "retry_on_timeout": ("the core retries timeouts of idempotent commands by itself", (None, False)),
    "retry_on_error": ("the core decides what is safe to retry", (None,)),
    "lib_name": ("CLIENT SETINFO is not sent", (None,)),
    "lib_version": ("CLIENT SETINFO is not sent", (None,)),
    "driver_info": ("CLIENT SETINFO is not sent", (None,)),
    "event_dispatcher": ("redpool has its own events (add_event_listener)", (None,)),
    "ssl_min_version": ("TLS 1.2 is always the minimum", (None,)),
    # A redis-py pool's connection arguments (connection_pool=):
    "parser_class": ("replies are parsed by the core", (None,)),
    "socket_type": ("the address decides the socket type", (None, 0)),
    "command_packer": ("commands are packed by redpool", (None,)),
}


#: redis-py arguments redpool cannot honour; passing one (other than its default) is an error.
UNSUPPORTED = {
    "credential_provider": "pass username= and password=",
    "redis_connect_func": "connection setup is the core's",
    "cache": "client-side caching is not supported yet",
    "cache_config": "client-side caching is not supported yet",
    "ssl_ca_path": "use ssl_ca_certs (a PEM bundle)",
    "ssl_ca_data": "use ssl_ca_certs (a PEM bundle)",
    "ssl_password": "use an unencrypted key file",
    "ssl_ciphers": "the cipher suites are rustls's defaults",
    "ssl_include_verify_flags": "not configurable",
    "ssl_exclude_verify_flags": "not configurable",
    "ssl_validate_ocsp": "OCSP is not supported",
    "ssl_validate_ocsp_stapled": "OCSP is not supported",
    "ssl_ocsp_context": "OCSP is not supported",
    "ssl_ocsp_expected_cert": "OCSP is not supported",
    "oss_cluster_maint_notifications_handler": "Redis Cluster is not supported yet",
}

#: redis-py's URL query options and the argument each one sets.
URL_ARGUMENTS = {
    "socket_timeout",
    "socket_connect_timeout",
    "socket_keepalive",
    "health_check_interval",
    "decode_responses",
    "encoding",
    "encoding_errors",
    "socket_read_size",
    "retry_on_timeout",
    "retry_on_error",
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "protocol",
    "legacy_responses",
    "timeout",
}

#: socket.TCP_* option → (its name, the knob, the unit of its value: seconds unless "ms").
_KEEPALIVE_OPTIONS = {
    getattr(socket, "TCP_KEEPIDLE", None): ("TCP_KEEPIDLE", "tcp_keepalive_idle", ""),
    getattr(socket, "TCP_KEEPINTVL", None): ("TCP_KEEPINTVL", "tcp_keepalive_interval", ""),
    getattr(socket, "TCP_KEEPCNT", None): ("TCP_KEEPCNT", "tcp_keepalive_count", ""),
    getattr(socket, "TCP_USER_TIMEOUT", None): ("TCP_USER_TIMEOUT", "tcp_user_timeout", "ms"),
}

_JITTER = {
    _backoff.ExponentialBackoff: "none",
    _backoff.FullJitterBackoff: "full",
    _backoff.EqualJitterBackoff: "equal",
    _backoff.DecorrelatedJitterBackoff: "decorrelated",
    getattr(_backoff, "ExponentialWithJitterBackoff", _backoff.FullJitterBackoff): "full",
}

#: The Python types of a number argument (True and False excluded).
_NUMBER = (int, float)

_FALSE_STRINGS = {"0", "F", "FALSE", "N", "NO", "OFF"}


@dataclass
class Settings:
    """Everything needed to open a native pool and encode commands."""

    url: Optional[str] = None
    unix_socket_path: Optional[str] = None
    tls: bool = False
    knobs: List[Tuple[str, str, str]] = field(default_factory=list)
    shared: bool = True
    encoding: str = "utf-8"
    encoding_errors: str = "strict"
    decode_responses: bool = False
    #: The ``protocol`` argument as given (None: unset; connections speak RESP2 then).
    protocol: Optional[int] = None
    #: redis-py's ``legacy_responses``: its RESP2-era reply shapes (True) or the unified ones.
    legacy_responses: bool = True
    #: What redis-py's pool would hold as ``connection_kwargs`` (without secrets and without the
    #: protocol, which the native pool tells), for code that reads
    #: ``r.connection_pool.connection_kwargs``.
    connection_kwargs: Dict[str, Any] = field(default_factory=dict)

    def native_args(self) -> Dict[str, Any]:
        """Keyword arguments of ``_native.Pool``."""
        return {
            "url": self.url,
            "unix_socket_path": self.unix_socket_path,
            "tls": self.tls,
            "settings": self.knobs,
            "shared": self.shared,
        }


def _fail(name: str, value: Any, rule: str) -> ConfigError:
    return ConfigError(f"invalid {name} = {value!r}: {rule}")


def flag(name: str, value: Any) -> bool:
    """An argument of this package's own (not a core knob) that must be True or False."""
    if not isinstance(value, bool):
        raise _fail(name, value, "must be True or False")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"invalid {name}: must be a string, not {type(value).__name__}")
    return value


def check_type(name: str, value: Any, of: Any) -> None:
    """Refuses ``value`` of argument ``name`` unless it is of type ``of`` (``_NUMBER``, ``int``,
    ``bool``, ``str`` or ``object``; True and False are no numbers), naming the type only, never
    the value: it may be a password."""
    if not isinstance(value, of) or (of in (_NUMBER, int) and isinstance(value, bool)):
        kind = {_NUMBER: "a number", int: "a whole number", bool: "True or False", str: "a string"}
        raise ConfigError(f"invalid {name}: must be {kind[of]}, not {type(value).__name__}")


def knob_value(name: str, value: Any, unit: str = "") -> str:
    """A value as the core's knob text: True/False as ``true``/``false``, a number as Python
    prints it followed by ``unit`` (a bare number of a duration is seconds, as everywhere in
    Python), a string as it is. Only the type is checked here: the core's knob table holds every
    default, range and message (naming ``name``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    # int()/float() first: a subclass (NumPy's float64) may print otherwise.
    if isinstance(value, int):
        return f"{int(value)}{unit}"
    if isinstance(value, float):
        return f"{float(value)!r}{unit}"
    if isinstance(value, str):
        return value
    raise ConfigError(f"invalid {name}: must be a number, a string or True/False, not {type(value).__name__}")


def _keepalive(options: Mapping[Any, Any]) -> List[Tuple[str, str, str]]:
    knobs = []
    for option, value in options.items():
        if option is None or option not in _KEEPALIVE_OPTIONS:
            raise _fail(
                "socket_keepalive_options",
                option,
                "supported keys are socket.TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_USER_TIMEOUT",
            )
        option_name, knob, unit = _KEEPALIVE_OPTIONS[option]
        name = f"socket_keepalive_options[socket.{option_name}]"
        # Socket options are whole numbers (setsockopt's int), in the option's own unit.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"invalid {name}: must be a whole number, not {type(value).__name__}")
        knobs.append((knob, knob_value(name, value, unit), name))
    return knobs


def _retry(retry: Any) -> List[Tuple[str, str, str]]:
    """``retry=Retry(backoff, retries)`` as the core's retry knobs. A backoff class without an
    equivalent keeps the core's default backoff; redis-py's ``NoBackoff`` (no delay) becomes
    the shortest delay the core takes, 1 ms."""
    if retry is None:
        return [("retries", "0", "retry")]
    retries = getattr(retry, "_retries", None)
    if isinstance(retry, int) or not isinstance(retries, int):
        raise _fail("retry", retry, "must be a redis.retry.Retry or None")
    knobs = [("retries", str(max(retries, 0)), "retry")]
    backoff = getattr(retry, "_backoff", None)
    if isinstance(backoff, _backoff.ConstantBackoff):
        base = cap = max(float(backoff._backoff), 0.001)
        jitter = "none"
    elif type(backoff) in _JITTER:
        base = max(float(backoff._base), 0.001)
        cap = max(float(backoff._cap), base)
        jitter = _JITTER[type(backoff)]
    else:
        return knobs
    return knobs + [
        ("retry_backoff_base", knob_value("retry", base), "retry"),
        ("retry_backoff_cap", knob_value("retry", cap), "retry"),
        ("retry_jitter", jitter, "retry"),
    ]


def _verify(cert_reqs: Any, check_hostname: Any) -> Optional[str]:
    """``ssl_cert_reqs``/``ssl_check_hostname`` as the ``tls_insecure`` knob value."""
    if cert_reqs is None or cert_reqs == _ssl.CERT_NONE:
        insecure = True
    elif isinstance(cert_reqs, str) and cert_reqs.lower() in ("none", "optional", "required"):
        insecure = cert_reqs.lower() == "none"
    elif cert_reqs in (_ssl.CERT_OPTIONAL, _ssl.CERT_REQUIRED):
        insecure = False
    else:
        raise _fail("ssl_cert_reqs", cert_reqs, "must be 'none', 'optional' or 'required'")
    if check_hostname is False and not insecure:
        raise ConfigError(
            "ssl_check_hostname=False needs ssl_cert_reqs='none': redpool checks the host name "
            "whenever it verifies the certificate"
        )
    return "true" if insecure else None


def _bool_arg(value: Any) -> Any:
    """redis-py's ``to_bool`` for URL query values."""
    if isinstance(value, str):
        return value.upper() not in _FALSE_STRINGS and value != ""
    return value


def _url_has_db(url: str) -> bool:
    parts = urlsplit(url)
    if any(name == "db" for name, _ in parse_qsl(parts.query)):
        return True
    return parts.scheme.lower() != "unix" and parts.path.strip("/") != ""


def split_url(url: str, kwargs: Dict[str, Any]) -> str:
    """Moves redis-py's query options out of ``url`` into ``kwargs`` (the URL wins, as in
    redis-py) and returns the URL with the core's own knobs left in its query."""
    if not isinstance(url, str):
        raise ConfigError(f"invalid url: must be a string, not {type(url).__name__}")
    parts = urlsplit(url)
    keep = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in URL_ARGUMENTS:
            keep.append((name, value))
        elif name in ("socket_keepalive", "decode_responses", "ssl_check_hostname", "retry_on_timeout",
                      "legacy_responses"):
            kwargs[name] = _bool_arg(value)
        elif name in ("socket_timeout", "socket_connect_timeout", "health_check_interval", "timeout"):
            # As redis-py's URL parsing: float(value); the core checks the number.
            try:
                kwargs[name] = float(value)
            except ValueError:
                raise _fail(name, value, "must be a number of seconds") from None
        elif name == "protocol":
            kwargs[name] = int(value) if value.isdigit() else value
        else:
            kwargs[name] = value
    return urlunsplit(parts._replace(query=urlencode(keep)))


def translate(
    *,
    url: Optional[str] = None,
    host: Optional[str] = None,
    port: Any = None,
    db: Optional[int] = None,
    password: Optional[str] = None,
    username: Optional[str] = None,
    socket_timeout: Optional[float] = None,
    socket_connect_timeout: Optional[float] = None,
    socket_keepalive: Optional[bool] = None,
    socket_keepalive_options: Optional[Mapping[int, int]] = None,
    unix_socket_path: Optional[str] = None,
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
    decode_responses: bool = False,
    retry: Any = ...,
    ssl: bool = False,
    ssl_keyfile: Optional[str] = None,
    ssl_certfile: Optional[str] = None,
    ssl_cert_reqs: Any = "required",
    ssl_ca_certs: Optional[str] = None,
    ssl_check_hostname: Optional[bool] = None,
    max_connections: Optional[int] = None,
    health_check_interval: Optional[float] = None,
    client_name: Optional[str] = None,
    protocol: Any = None,
    legacy_responses: bool = True,
    timeout: Optional[float] = None,
    acquire_timeout: Optional[float] = None,
    min_idle: Optional[int] = None,
    leak_detection_threshold: Optional[float] = None,
    pool_name: Optional[str] = None,
    shared_pool: bool = True,
    options: Optional[Mapping[str, Any]] = None,
    **others: Any,
) -> Settings:
    """redis-py's arguments (plus redpool's ``acquire_timeout``, ``min_idle``,
    ``leak_detection_threshold`` (seconds, 0 = off), ``pool_name`` (the ``pool`` label in
    metrics), ``shared_pool`` and ``options``: any core knob by name) as :class:`Settings`."""
    for name, value in others.items():
        if name == "maint_notifications_config":
            # redis-py's default ("auto") turns them on only where the server sends them: redpool
            # does not ask for them.
            if value is not None and getattr(value, "enabled", None) not in (False, "auto"):
                raise ConfigError("maint_notifications_config is not supported by redpool yet: "
                                  "leave it unset or disabled")
        elif name in UNSUPPORTED:
            if value not in (None, False):
                raise ConfigError(f"{name} is not supported by redpool: {UNSUPPORTED[name]}")
        elif name in IGNORED:
            reason, harmless = IGNORED[name]
            if not any(value is h or (type(value) is type(h) and value == h) for h in harmless):
                # stacklevel: this function, Redis.__init__ or from_url, then the caller's line.
                warnings.warn(f"redpool ignores {name}: {reason}", IgnoredArgumentWarning, stacklevel=3)
        else:
            raise TypeError(f"Redis() got an unexpected keyword argument {name!r}")
    if options and "protocol" in options:
        # The knob is the argument: the replies' shapes depend on it too.
        options = dict(options)
        given = options.pop("protocol")
        protocol = given if protocol is None else protocol
    if protocol not in (None, 2, "2", 3, "3"):
        raise _fail("protocol", protocol, "must be 2 (RESP2) or 3 (RESP3)")
    if not isinstance(decode_responses, bool):
        raise _fail("decode_responses", decode_responses, "must be True or False")
    settings = Settings(
        url=url,
        shared=flag("shared_pool", shared_pool),
        encoding=_text("encoding", encoding),
        encoding_errors=_text("encoding_errors", encoding_errors),
        decode_responses=decode_responses,
        protocol=None if protocol is None else int(protocol),
        legacy_responses=flag("legacy_responses", legacy_responses),
    )
    settings.connection_kwargs = {
        "encoding": settings.encoding,
        "encoding_errors": settings.encoding_errors,
        "decode_responses": decode_responses,
        "legacy_responses": legacy_responses,
    }
    knobs = settings.knobs

    def knob(name: str, value: Any, knob: Optional[str] = None, of: Any = object) -> None:
        """Argument ``name`` sets knob ``knob`` (by default its namesake) from a value of type
        ``of`` (as redis-py types it); None leaves the core's default."""
        if value is None:
            return
        check_type(name, value, of)
        knobs.append((knob or name, knob_value(name, value), name))

    if url is None:
        if unix_socket_path is not None:
            settings.unix_socket_path = _text("unix_socket_path", unix_socket_path)
        else:
            # Unset host and port are the core's defaults (127.0.0.1:6379 in every language); the
            # core checks the port (a number from 1 to 65535) and names it.
            knob("host", host, of=str)
            knob("port", port)
            settings.tls = flag("ssl", ssl)
        knob("db", db, of=int)
    elif not _url_has_db(url):
        # As in redis-py: the URL's db wins; the keyword applies when the URL has none.
        knob("db", db, of=int)
    knob("username", username, of=str)
    knob("password", password, of=str)
    knob("client_name", client_name, of=str)
    if settings.protocol == 3:
        knobs.append(("protocol", "3", "protocol"))
    knob("pool_name", pool_name, of=str)
    knob("socket_timeout", socket_timeout, of=_NUMBER)
    knob("socket_connect_timeout", socket_connect_timeout, "connect_timeout", _NUMBER)
    knob("health_check_interval", health_check_interval, of=_NUMBER)
    knob("timeout", timeout, "acquire_timeout", _NUMBER)
    knob("acquire_timeout", acquire_timeout, of=_NUMBER)
    knob("leak_detection_threshold", leak_detection_threshold, of=_NUMBER)
    knob("max_connections", max_connections, of=_NUMBER)
    knob("min_idle", min_idle, of=_NUMBER)
    knob("socket_keepalive", socket_keepalive, "tcp_keepalive", bool)
    if socket_keepalive_options:
        knobs += _keepalive(socket_keepalive_options)
    if retry is not ...:
        knobs += _retry(retry)
    if settings.tls or (url or "").lower().startswith("rediss://"):
        knob("ssl_ca_certs", ssl_ca_certs, "tls_ca_file", str)
        knob("ssl_certfile", ssl_certfile, "tls_cert_file", str)
        knob("ssl_keyfile", ssl_keyfile, "tls_key_file", str)
        insecure = _verify(ssl_cert_reqs, ssl_check_hostname)
        if insecure:
            knobs.append(("tls_insecure", insecure, "ssl_cert_reqs"))
    for name, value in (options or {}).items():
        knob(_text("options key", name), value)
    return settings


#: redis-py's connection classes (sync and asyncio) and the argument each one implies.
_CONNECTION_CLASSES = (
    (("UnixDomainSocketConnection",), "unix"),
    (("SSLConnection",), "ssl"),
    (("Connection",), "tcp"),
)


def _transport(connection_class: Any) -> str:
    """``"unix"``, ``"ssl"`` or ``"tcp"`` for a redis-py connection class (or a subclass)."""
    names = {klass.__name__ for klass in getattr(connection_class, "__mro__", ())
             if klass.__module__.startswith("redis.")}
    for candidates, transport in _CONNECTION_CLASSES:
        if names.intersection(candidates):
            return transport
    raise ConfigError(
        f"connection_class {getattr(connection_class, '__name__', connection_class)!r} is not "
        "supported: redpool makes its own connections (TCP, TLS or a Unix socket)"
    )


#: What a redis-py pool adds to its ``connection_kwargs`` for its own connections.
_POOL_INTERNALS = {"himport_registry", "maint_notifications_pool_handler", "orig_host_address",
                   "orig_socket_timeout", "orig_socket_connect_timeout"}

#: redis-py's unlimited ``max_connections`` of a ``ConnectionPool`` (its default before 8; 8's is
#: 100, taken as given): redpool's own default cap applies instead.
_NO_CAP = 2**31


def translate_pool(pool: Any) -> Settings:
    """A redis-py ``ConnectionPool`` / ``BlockingConnectionPool`` (sync or asyncio) as the
    :class:`Settings` of a dedicated native pool: its connection arguments as :func:`translate`
    takes them, its ``max_connections`` (unless unlimited) and a blocking
    pool's ``timeout`` as the wait for a free connection. A plain redis-py pool raises at once
    when it is full; redpool's waits up to ``acquire_timeout`` first."""
    kwargs = {name: value for name, value in pool.connection_kwargs.items()
              if name not in _POOL_INTERNALS}
    transport = _transport(pool.connection_class)
    if transport == "unix":
        kwargs["unix_socket_path"] = kwargs.pop("path", None)
    elif transport == "ssl":
        kwargs["ssl"] = True
    cap = pool.max_connections
    if isinstance(cap, int) and cap < _NO_CAP:
        kwargs.setdefault("max_connections", cap)
    if "Blocking" in type(pool).__name__ and getattr(pool, "timeout", None) is not None:
        kwargs.setdefault("timeout", pool.timeout)
    settings = translate(shared_pool=False, **kwargs)
    settings.connection_kwargs = {
        name: value for name, value in pool.connection_kwargs.items()
        if name not in _POOL_INTERNALS and name not in ("password", "credential_provider")
    }
    settings.connection_kwargs["legacy_responses"] = settings.legacy_responses
    return settings
