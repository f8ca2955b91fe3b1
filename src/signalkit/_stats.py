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

_MAX_FIELDS = 256
"""Distinct argument names ``Stats.rejected_fields`` tracks; the rest count as ``(other)``."""


@dataclass(frozen=True)
class ExporterStats:
    """One exporter's share of the accounting."""

    delivered: int
    """Events this exporter confirmed."""
    dropped: dict[str, int]
    """Events lost for this exporter, by reason (including losses before fan-out)."""
    pending: int
    """Events accepted and not yet delivered to, or dropped for, this exporter."""
    recovered: int = 0
    """Events an earlier run left in the spool for this exporter (delivered by this one)."""


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
    """Accepted events lost, by reason (``queue_full``, ``too_large``, ``rejected``,
    ``retries_exhausted``, ``shutdown``...), summed over exporters: an event lost for two
    exporters counts twice. :attr:`exporters` has each exporter's exact account."""
    exported: int = 0
    """Events every exporter has finished with (delivered, or dropped and counted)."""
    delivered: dict[str, int] = field(default_factory=dict)
    """Events each exporter confirmed, by exporter name."""
    retried: int = 0
    failed: int = 0
    """Export attempts that failed (each exporter, each batch)."""
    spooled: int = 0
    pending: int = 0
    """Accepted events some exporter has not yet finished with."""

    exporters: dict[str, ExporterStats] = field(default_factory=dict)
    """Per exporter, exactly: ``recorded + recovered == delivered + sum(dropped.values()) +
    pending`` (``recovered`` is 0 without a spool)."""

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
        self.exporter_dropped: dict[str, dict[str, int]] = {}
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
            fields = self.rejected_fields
            if field_name not in fields and len(fields) >= _MAX_FIELDS:
                # field names can carry the caller's keys (attributes.<key>, items[i]): bounded
                field_name = "(other)"
            fields[field_name] = fields.get(field_name, 0) + 1
        self.warn(f"rejected:{reason}", "signalkit rejected a recording call: %s", message)

    def drop(
        self, reason: str, count: int = 1, detail: str = "", exporter: str | None = None
    ) -> None:
        """Count ``count`` accepted events lost, for every exporter or for ``exporter`` only."""
        if count <= 0:
            return
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            if exporter is not None:
                mine = self.exporter_dropped.setdefault(exporter, {})
                mine[reason] = mine.get(reason, 0) + count
        extra = f" ({detail})" if detail else ""
        # A sink that is down makes both retries and a full backlog: one warning an interval
        # per exporter says so (the counts are all in stats).
        key = f"exporter:{exporter}" if exporter and reason == "queue_full" else f"dropped:{reason}"
        self.warn(key, "signalkit dropped events: %s%s", reason, extra)

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

    def snapshot(
        self,
        recorded: int,
        exported: int,
        pending: int,
        lanes: dict[str, int],
        recovered: dict[str, int] | None = None,
    ) -> Stats:
        """A consistent copy; ``lanes`` maps each exporter to its pending count."""
        with self._lock:
            common = {
                reason: count - sum(d.get(reason, 0) for d in self.exporter_dropped.values())
                for reason, count in self.dropped.items()
            }
            exporters = {}
            for name, lane_pending in lanes.items():
                mine = dict(self.exporter_dropped.get(name, {}))
                for reason, count in common.items():
                    if count:
                        mine[reason] = mine.get(reason, 0) + count
                exporters[name] = ExporterStats(
                    delivered=self.delivered.get(name, 0),
                    dropped=mine,
                    pending=lane_pending,
                    recovered=(recovered or {}).get(name, 0),
                )
            return Stats(
                recorded=recorded,
                rejected=dict(self.rejected),
                rejected_fields=dict(self.rejected_fields),
                filtered=self.filtered,
                dropped=dict(self.dropped),
                exported=exported,
                delivered=dict(self.delivered),
                retried=self.retried,
                failed=self.failed,
                spooled=self.spooled,
                pending=pending,
                exporters=exporters,
            )
