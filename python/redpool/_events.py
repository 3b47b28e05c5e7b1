"""Pool events as Python values, and their records on the ``redpool`` logger.

An event is a dict with a ``"type"`` key, the ``"pool"`` it happened in (its URL, without the
password) and the event's fields:

=========================  ==============================================================
``type``                   fields
=========================  ==============================================================
breaker_state_changed      ``from``, ``to``: ``"closed"``, ``"open"`` or ``"half_open"``
health_changed             ``from`` (None for the first check), ``to``: ``"healthy"``,
                           ``"degraded"`` or ``"unhealthy"``
connection_created         ``id``
connection_closed          ``id``, ``reason`` (``"broken"``, ``"idle_timeout"``, ...)
pool_exhausted             ``max_connections`` (once per episode of callers queueing)
acquire_timed_out          ``waited`` (seconds), ``waiting`` (callers still waiting)
leak_suspected             ``connection_id``, ``held_for`` (seconds), ``thread`` and
                           ``stack``: who checked the connection out and where (the Python
                           thread name and stack for a pipeline's ``watch()`` session)
=========================  ==============================================================

Listeners run on the thread where the event happened (a caller's thread or the pool's
maintenance thread), never while the pool holds a lock; they should return quickly. An exception
in a listener goes to :func:`sys.unraisablehook` and never reaches the pool.

Listeners may be added and removed from any thread at any time, also from inside a listener (a
listener may remove itself): that waits for nothing but the GIL. Each event goes to the
listeners registered when its delivery starts, in the order they were added: a listener added
during a delivery gets the next events, one removed before its turn is skipped, and once
``remove_event_listener`` returns no new call of it starts. Clients of one shared pool share its
listeners. An event raised while the process is in ``os.fork()`` is delivered just after the fork,
in the parent, on a thread of its own.

The ``redpool`` logger receives the state changes (breaker and health transitions) and, as
WARNINGs, suspected leaks (connections checked out longer than ``leak_detection_threshold``).
"""

from __future__ import annotations

import logging
from typing import Any, Dict

logger = logging.getLogger("redpool")

#: An event (see the module documentation).
Event = Dict[str, Any]


def log_event(event: Event) -> None:
    """Logs a breaker or health transition, or a suspected leak (called by the native module,
    once per pool)."""
    kind, pool = event["type"], event["pool"]
    if kind == "leak_suspected":
        logger.warning(
            "%s: connection %s has been checked out for %.1fs by thread %s (past "
            "leak_detection_threshold): possible leak; acquired at:\n%s",
            pool, event["connection_id"], event["held_for"], event["thread"],
            event["stack"].rstrip(),
        )
        return
    before, after = event["from"], event["to"]
    if kind == "breaker_state_changed":
        level = logging.WARNING if after == "open" else logging.INFO
        logger.log(level, "%s: circuit breaker %s -> %s", pool, before, after)
    elif kind == "health_changed":
        level = logging.INFO if after == "healthy" else logging.WARNING
        logger.log(level, "%s: health %s -> %s", pool, before or "unknown", after)
