"""redis-py's client arguments translated into redpool's knobs (see the README's defaults table).

redis-py names its settings after sockets (``socket_timeout``, ``socket_keepalive_options``,
``ssl_ca_certs``, ``retry=Retry(...)``); the core names them after what they do
(``socket_timeout``, ``tcp_keepalive_idle``, ``tls_ca_file``, ``retries``). This module is the
one place that knows both. Every value is checked here first, so an error names the argument the
caller actually wrote; the core then validates ranges and combinations once more.
"""

from __future__ import annotations

import math
import socket
import ssl as _ssl
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import backoff as _backoff

from .exceptions import ConfigError

#: redis-py arguments accepted for compatibility that change nothing here, and why.
IGNORED = {
    "socket_read_size": "replies are read by the core",
    "retry_on_timeout": "the core retries timeouts of idempotent commands by itself",
    "retry_on_error": "the core decides what is safe to retry",
    "lib_name": "CLIENT SETINFO is not sent",
    "lib_version": "CLIENT SETINFO is not sent",
    "driver_info": "CLIENT SETINFO is not sent",
    "event_dispatcher": "redpool has its own events (add_event_listener)",
    "legacy_responses": "responses are always redis-py's RESP2 shapes",
    "ssl_min_version": "TLS 1.2 is always the minimum",
}

#: redis-py arguments redpool cannot honour; passing one (other than its default) is an error.
UNSUPPORTED = {
    "connection_pool": "redpool manages the pool: use max_connections, shared_pool=False or options=",
    "single_connection_client": "use pipeline() with watch() for a session on one connection",
    "credential_provider": "pass username= and password=",
    "redis_connect_func": "connection setup is the core's",
    "cache": "client-side caching needs RESP3",
    "cache_config": "client-side caching needs RESP3",
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
    "maint_notifications_config": "needs RESP3",
    "oss_cluster_maint_notifications_handler": "needs RESP3",
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

_KEEPALIVE_OPTIONS = {
    getattr(socket, "TCP_KEEPIDLE", None): ("tcp_keepalive_idle", "s"),
    getattr(socket, "TCP_KEEPINTVL", None): ("tcp_keepalive_interval", "s"),
    getattr(socket, "TCP_KEEPCNT", None): ("tcp_keepalive_count", ""),
    getattr(socket, "TCP_USER_TIMEOUT", None): ("tcp_user_timeout", "ms"),
}

_JITTER = {
    _backoff.ExponentialBackoff: "none",
    _backoff.FullJitterBackoff: "full",
    _backoff.EqualJitterBackoff: "equal",
    _backoff.DecorrelatedJitterBackoff: "decorrelated",
    getattr(_backoff, "ExponentialWithJitterBackoff", _backoff.FullJitterBackoff): "full",
}

_FALSE_STRINGS = {"0", "F", "FALSE", "N", "NO", "OFF"}


@dataclass
class Settings:
    """Everything needed to open a native pool and encode commands."""

    url: Optional[str] = None
    unix_socket_path: Optional[str] = None
    tls: bool = False
    knobs: List[Tuple[str, str]] = field(default_factory=list)
    shared: bool = True
    encoding: str = "utf-8"
    encoding_errors: str = "strict"
    decode_responses: bool = False

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


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, value, "must be a number of seconds")
    if math.isnan(value) or math.isinf(value):
        raise _fail(name, value, "must be a finite number of seconds")
    return float(value)


def seconds(name: str, value: Any, allow_zero: bool = False) -> str:
    """A duration argument in seconds as knob text; negative (or zero unless allowed) fails."""
    number = _number(name, value)
    if number < 0 or (number == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise _fail(name, value, f"must be a number of seconds {rule}")
    return f"{number:.6f}s"


def _whole(name: str, value: Any, minimum: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, value, f"must be a whole number >= {minimum}")
    return str(value)


def pool_size(max_connections: Any, min_idle: Any) -> Tuple[int, Optional[int]]:
    """The arguments of ``resize()``, checked: ``max_connections`` >= 1, ``min_idle`` >= 0 or
    None (the core checks that it is not above ``max_connections``)."""
    size = int(_whole("max_connections", max_connections, 1))
    return size, None if min_idle is None else int(_whole("min_idle", min_idle, 0))


def _flag(name: str, value: Any) -> str:
    if not isinstance(value, bool):
        raise _fail(name, value, "must be True or False")
    return "true" if value else "false"


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"invalid {name}: must be a string, not {type(value).__name__}")
    return value


def knob_text(name: str, value: Any) -> str:
    """Any value of ``options=`` as knob text (numbers of seconds for durations)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return seconds(name, value, allow_zero=True)
    return _text(name, value)


def _keepalive(options: Mapping[Any, Any]) -> List[Tuple[str, str]]:
    knobs = []
    for option, value in options.items():
        if option is None or option not in _KEEPALIVE_OPTIONS:
            raise _fail(
                "socket_keepalive_options",
                option,
                "supported keys are socket.TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_USER_TIMEOUT",
            )
        knob, unit = _KEEPALIVE_OPTIONS[option]
        knobs.append((knob, _whole(knob, value, 0 if unit == "ms" else 1) + unit))
    return knobs


def _retry(retry: Any) -> List[Tuple[str, str]]:
    """``retry=Retry(backoff, retries)`` as the core's retry knobs. A backoff class without an
    equivalent keeps the core's default backoff."""
    if retry is None:
        return [("retries", "0")]
    retries = getattr(retry, "_retries", None)
    if isinstance(retry, int) or not isinstance(retries, int):
        raise _fail("retry", retry, "must be a redis.retry.Retry or None")
    knobs = [("retries", str(max(retries, 0)))]
    backoff = getattr(retry, "_backoff", None)
    if isinstance(backoff, _backoff.ConstantBackoff):
        delay = f"{max(float(backoff._backoff), 0.001):.6f}s"
        knobs += [("retry_backoff_base", delay), ("retry_backoff_cap", delay)]
        knobs.append(("retry_jitter", "none"))
    elif type(backoff) in _JITTER:
        base = max(float(backoff._base), 0.001)
        cap = max(float(backoff._cap), base)
        knobs += [("retry_backoff_base", f"{base:.6f}s"), ("retry_backoff_cap", f"{cap:.6f}s")]
        knobs.append(("retry_jitter", _JITTER[type(backoff)]))
    return knobs


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
        elif name in ("socket_keepalive", "decode_responses", "ssl_check_hostname", "retry_on_timeout"):
            kwargs[name] = _bool_arg(value)
        elif name in ("socket_timeout", "socket_connect_timeout", "health_check_interval", "timeout"):
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
    protocol: Optional[int] = None,
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
        if name in UNSUPPORTED:
            if value not in (None, False):
                raise ConfigError(f"{name} is not supported by redpool: {UNSUPPORTED[name]}")
        elif name not in IGNORED:
            raise TypeError(f"Redis() got an unexpected keyword argument {name!r}")
    if protocol not in (None, 2, "2"):
        raise _fail("protocol", protocol, "redpool speaks RESP2 (protocol=2) only")
    if not isinstance(decode_responses, bool):
        raise _fail("decode_responses", decode_responses, "must be True or False")
    settings = Settings(
        url=url,
        shared=_flag("shared_pool", shared_pool) == "true",
        encoding=_text("encoding", encoding),
        encoding_errors=_text("encoding_errors", encoding_errors),
        decode_responses=decode_responses,
    )
    knobs = settings.knobs
    if url is None:
        if unix_socket_path is not None:
            settings.unix_socket_path = _text("unix_socket_path", unix_socket_path)
        else:
            # Unset host and port are the core's defaults (127.0.0.1:6379 in every language); the
            # core checks the port (a number from 1 to 65535) and names it.
            if host is not None:
                knobs.append(("host", _text("host", host)))
            if port is not None:
                knobs.append(("port", port if isinstance(port, str) else repr(port)))
            settings.tls = _flag("ssl", ssl) == "true"
        if db is not None:
            knobs.append(("db", _whole("db", db, 0)))
    elif db is not None and not _url_has_db(url):
        # As in redis-py: the URL's db wins; the keyword applies when the URL has none.
        knobs.append(("db", _whole("db", db, 0)))
    if username is not None:
        knobs.append(("username", _text("username", username)))
    if password is not None:
        knobs.append(("password", _text("password", password)))
    if client_name is not None:
        knobs.append(("client_name", _text("client_name", client_name)))
    if pool_name is not None:
        knobs.append(("pool_name", _text("pool_name", pool_name)))
    for name, knob, value, zero_ok in (
        ("socket_timeout", "socket_timeout", socket_timeout, False),
        ("socket_connect_timeout", "connect_timeout", socket_connect_timeout, False),
        ("health_check_interval", "health_check_interval", health_check_interval, True),
        ("timeout", "acquire_timeout", timeout, False),
        ("acquire_timeout", "acquire_timeout", acquire_timeout, False),
        ("leak_detection_threshold", "leak_detection_threshold", leak_detection_threshold, True),
    ):
        if value is not None:
            knobs.append((knob, seconds(name, value, allow_zero=zero_ok)))
    if max_connections is not None:
        knobs.append(("max_connections", _whole("max_connections", max_connections, 1)))
    if min_idle is not None:
        knobs.append(("min_idle", _whole("min_idle", min_idle, 0)))
    if socket_keepalive is not None:
        knobs.append(("tcp_keepalive", _flag("socket_keepalive", socket_keepalive)))
    if socket_keepalive_options:
        knobs += _keepalive(socket_keepalive_options)
    if retry is not ...:
        knobs += _retry(retry)
    if settings.tls or (url or "").lower().startswith("rediss://"):
        for name, knob, value in (
            ("ssl_ca_certs", "tls_ca_file", ssl_ca_certs),
            ("ssl_certfile", "tls_cert_file", ssl_certfile),
            ("ssl_keyfile", "tls_key_file", ssl_keyfile),
        ):
            if value is not None:
                knobs.append((knob, _text(name, value)))
        insecure = _verify(ssl_cert_reqs, ssl_check_hostname)
        if insecure:
            knobs.append(("tls_insecure", insecure))
    for name, value in (options or {}).items():
        knobs.append((_text("options key", name), knob_text(name, value)))
    return settings
