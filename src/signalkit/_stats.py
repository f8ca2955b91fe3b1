"""Counters of what the client recorded, rejected, dropped and delivered, and throttled warnings.

Nothing signalkit discards goes unsaid: every rejection and drop is counted by reason here and
announced through the ``signalkit`` logger at most once per ``interval`` per reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Counters", "Stats", "logger"]

logger = logging.getLogger("signalkit")


@dataclass(frozen=True)
class Stats:
    """A snapshot of a client's counters. ``accepted = delivered + dropped + pending``."""

    recorded: int
    """Events accepted: recording calls that returned an event."""
    rejected: dict[str, int] = field(default_factory=dict)
    """Recording calls refused for bad input, by reason (``token_expired``, ``invalid``...)."""
    rejected_fields: dict[str, int] = field(default_factory=dict)
    """The same refusals by the argument that was wrong."""
    filtered: int = 0
    """Events a processor chose to drop on purpose (sampling): not a loss."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Accepted events that will never be delivered, by reason (``queue_full``, ``too_large``,
    ``expired``, ``rejected``, ``exporter_failed``, ``shutdown``)."""
    exported: int = 0
    """Events every exporter has handled (delivered, or given up on and counted in dropped)."""
    delivered: dict[str, int] = field(default_factory=dict)
    """Events each exporter confirmed, by exporter name."""
    retried: int = 0
    failed: int = 0
    """Export attempts that failed (each exporter, each batch)."""
    spooled: int = 0
    pending: int = 0
    """Accepted events not yet handled by every exporter."""

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())


class Counters:
    """Thread-safe counters behind :class:`Stats`, plus the throttled warnings."""

    def __init__(self, warn_interval_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self.warn_interval_s = warn_interval_s
        self.on_warning: Callable[[], None] | None = None
        """Called after a warning is queued; the pipeline wakes its worker to log it."""
        self.reset()

    def reset(self) -> None:
        """Start from zero (a forked child counts only its own events)."""
        self._lock = threading.Lock()
        self.rejected: dict[str, int] = {}
        self.rejected_fields: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        self.filtered = 0
        self.exported = 0
        self.retried = 0
        self.failed = 0
        self.spooled = 0
        self._last_warn: dict[str, float] = {}
        self._unwarned: dict[str, int] = {}
        self._warnings: deque[tuple[str, tuple[object, ...]]] = deque(maxlen=256)

    def reject(self, reason: str, field_name: str, message: str) -> None:
        with self._lock:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            self.rejected_fields[field_name] = self.rejected_fields.get(field_name, 0) + 1
        self.warn(f"rejected:{reason}", "signalkit rejected a recording call: %s", message)

    def drop(self, reason: str, count: int = 1, detail: str = "") -> None:
        if count <= 0:
            return
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
        extra = f" ({detail})" if detail else ""
        self.warn(f"dropped:{reason}", "signalkit dropped events: %s%s", reason, extra)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def delivered_to(self, exporter: str, count: int) -> None:
        with self._lock:
            self.delivered[exporter] = self.delivered.get(exporter, 0) + count

    def warn(self, key: str, fmt: str, *args: object) -> None:
        """Log ``fmt % args`` at WARNING, at most once per interval per key, with a tally."""
        now = time.monotonic()
        with self._lock:
            last = self._last_warn.get(key)
            if last is not None and now - last < self.warn_interval_s:
                self._unwarned[key] = self._unwarned.get(key, 0) + 1
                return
            self._last_warn[key] = now
            suppressed = self._unwarned.pop(key, 0)
        if suppressed:
            fmt += " (and %d more like it since the last warning)"
            args = (*args, suppressed)
        hook = self.on_warning
        if hook is None:
            logger.warning(fmt, *args)
            return
        # A log handler may write to a file or a socket: hand the record to the worker thread
        # so a recording call never does I/O.
        self._warnings.append((fmt, args))
        hook()

    def emit_warnings(self) -> None:
        """Log the warnings handed over by :meth:`warn` (called from the worker thread)."""
        while self._warnings:
            try:
                fmt, args = self._warnings.popleft()
            except IndexError:
                return
            logger.warning(fmt, *args)

    def snapshot(self, recorded: int, pending: int) -> Stats:
        with self._lock:
            return Stats(
                recorded=recorded,
                rejected=dict(self.rejected),
                rejected_fields=dict(self.rejected_fields),
                filtered=self.filtered,
                dropped=dict(self.dropped),
                exported=self.exported,
                delivered=dict(self.delivered),
                retried=self.retried,
                failed=self.failed,
                spooled=self.spooled,
                pending=pending,
            )
