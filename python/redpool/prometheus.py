"""redpool's pool metrics in ``prometheus_client`` (``pip install redpool[prometheus]``).

::

    import redpool.prometheus
    redpool.prometheus.register()        # every pool of the process, into prometheus_client.REGISTRY
    # prometheus_client.start_http_server(9464), or your framework's /metrics view, exports them

The families and series are exactly those of :func:`redpool.metrics` (same names, types, help
and labels: ``redpool_commands_total{pool,server,command,outcome}``, ...), read from the Rust
core at every scrape. Importing :mod:`redpool` does not import this module or need
``prometheus_client``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Iterable, Optional

try:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "redpool.prometheus needs prometheus_client: pip install 'redpool[prometheus]'"
    ) from error

import redpool

from .client import PoolMethods

__all__ = ["RedpoolCollector", "register"]


class RedpoolCollector(Collector):
    """A ``prometheus_client`` custom collector of redpool's metrics: every pool of the process,
    or only ``client``'s pool when one is given. Each ``collect()`` reads the core's metrics
    once (lock-free counters, no network)."""

    def __init__(self, client: Optional[PoolMethods] = None) -> None:
        self._client = client

    def collect(self) -> Iterable[Metric]:
        """The metric families of the pools now (parsed from the core's exposition text)."""
        text = redpool.metrics() if self._client is None else self._client.metrics()
        return list(text_string_to_metric_families(text))

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the series depend on the pools and commands in use at scrape time
        (so registering does not read the metrics; :func:`register` avoids registering twice)."""
        return []


_registered: "weakref.WeakKeyDictionary[CollectorRegistry, RedpoolCollector]" = (
    weakref.WeakKeyDictionary()
)
#: Held across fork() (so a child never inherits it held by a parent thread that does not exist
#: there, nor a registration half done); never held while waiting for anything but
#: ``registry.register``.
_lock = threading.Lock()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release,
                        after_in_child=_lock.release)


def register(registry: CollectorRegistry = REGISTRY) -> RedpoolCollector:
    """Registers a :class:`RedpoolCollector` of every pool of the process with ``registry``
    (default: ``prometheus_client.REGISTRY``) and returns it; registering with the same registry
    again returns the first collector instead of exporting every series twice."""
    with _lock:
        collector = _registered.get(registry)
        if collector is None:
            collector = RedpoolCollector()
            registry.register(collector)
            _registered[registry] = collector
        return collector
