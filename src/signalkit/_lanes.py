"""Delivery lanes: one thread per exporter, so a slow or failing sink never holds back another.

The dispatcher (``_worker.Pipeline``) offers each batch to every lane. A lane keeps a bounded
backlog — when the backlog is over its budget it drops by the client's policy, counting the
drop for that exporter — and delivers in order, one attempt at a time, following what the
exporter said: retry with full-jitter backoff (never sooner than Retry-After), split a batch the
sink found too large, pause while the sink refuses our credentials, give up on a batch the sink
will never take. Every event offered ends up delivered, dropped (counted by reason) or pending.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ._retry import backoff_delay
from ._spool import Spool
from ._stats import Counters, logger
from .events import Event, parse_event
from .exporters.base import Exporter, ExportFailure, ExportResult, RetryPolicy

__all__ = ["Lane", "exporter_name", "wait_until"]

LanePolicy = Literal["drop_newest", "drop_oldest"]


def wait_until(cv: threading.Condition, done: Callable[[], bool], deadline: float | None) -> bool:
    """With ``cv``'s lock held, wait for ``done()``; False if ``deadline`` (monotonic) passes."""
    while not done():
        if deadline is None:
            cv.wait()
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        cv.wait(remaining)
    return True


def exporter_name(exporter: Exporter) -> str:
    name = getattr(exporter, "name", None)
    return name if isinstance(name, str) and name else type(exporter).__name__


@dataclass(slots=True)
class _Batch:
    events: list[Event]
    size: int


class Lane:
    """Delivers to one exporter from a bounded backlog, on its own daemon thread."""

    def __init__(
        self,
        exporter: Exporter,
        name: str,
        counters: Counters,
        *,
        max_events: int,
        max_bytes: int,
        on_full: LanePolicy,
        threaded: bool = True,
    ) -> None:
        self.exporter = exporter
        self.name = name
        self._counters = counters
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.on_full = on_full
        self.threaded = threaded
        policy = getattr(exporter, "retry_policy", None)
        self.policy = policy if isinstance(policy, RetryPolicy) else RetryPolicy()
        self.max_batch_events = _positive(getattr(exporter, "max_batch_events", None))
        self.max_batch_bytes = _positive(getattr(exporter, "max_batch_bytes", None))
        self.max_event_bytes = _positive(getattr(exporter, "max_event_bytes", None))
        if getattr(exporter, "checks_limits", False) is True:
            # the exporter measures bytes itself: cut by count only, and split on its answer
            self.max_batch_bytes = self.max_event_bytes = None
        envelope = _positive(getattr(exporter, "envelope_bytes", None)) or 64
        if self.max_batch_bytes is not None:  # room for the body around the events
            self.max_batch_bytes = max(self.max_batch_bytes - envelope, 1)
        self.reset()

    def reset(self) -> None:
        """Fresh state (at start, and in a forked child: the parent delivers its own backlog)."""
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._backlog: deque[_Batch] = deque()
        self._events = 0
        self._bytes = 0
        self.offered = 0
        self.done = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self._deadline: float | None = None
        self._rng = random.Random()
        self._progress = 0
        self.spool: Spool | None = None
        """Set by the pipeline when delivery reads from the durable spool at this lane's cursor."""
        self._spool_dirty = False
        self.read_limit = 512
        self.recovered = 0
        """Events an earlier run left in the spool for this lane."""
        self.abandoned = 0
        """Events this lane gave up on at shutdown."""
        self.shut = False

    # -- dispatcher side ---------------------------------------------------------------------

    def offer(self, events: list[Event], size: int) -> None:
        """Queue a batch for this exporter; never blocks."""
        dropped = 0
        with self._lock:
            self.offered += len(events)
            if self._closing:
                self.done += len(events)
                dropped_reason = "shutdown"
                dropped = len(events)
            else:
                dropped_reason = "queue_full"
                while self._backlog and (
                    self._events + len(events) > self.max_events
                    or self._bytes + size > self.max_bytes
                ):
                    if self.on_full != "drop_oldest":
                        break
                    old = self._backlog.popleft()
                    self._events -= len(old.events)
                    self._bytes -= old.size
                    self.done += len(old.events)
                    dropped += len(old.events)
                if self._backlog and (
                    self._events + len(events) > self.max_events
                    or self._bytes + size > self.max_bytes
                ):  # drop_newest: the incoming batch is what goes
                    self.done += len(events)
                    dropped += len(events)
                else:
                    self._backlog.append(_Batch(events, size))
                    self._events += len(events)
                    self._bytes += size
                    if self._thread is None and self.threaded:
                        self._start()
                    self._cv.notify_all()
        if dropped:
            self._counters.drop(
                dropped_reason, dropped, f"{self.name} is behind ({self.on_full})", self.name
            )

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"signalkit-lane-{self.name}", daemon=True
        )
        self._thread.start()

    @property
    def pending(self) -> int:
        return self.offered - self.done

    def wait_done(self, target: int, deadline: float | None) -> bool:
        """Wait until ``target`` offered events are finished with; False at the deadline."""
        with self._lock:
            return wait_until(self._cv, lambda: self.done >= target, deadline)

    def close(self, deadline: float | None) -> None:
        """Deliver the backlog until ``deadline``, then stop."""
        with self._lock:
            self._closing = True
            self._deadline = deadline
            self._cv.notify_all()

    def join(self, deadline: float | None) -> bool:
        """Wait for the thread to stop; count what was left behind. True if it stopped."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        stopped = thread is None or not thread.is_alive()
        self._abandon_backlog()
        return stopped

    # -- lane thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._backlog and not self._spool_dirty and not self._closing:
                    self._cv.wait()
                if not self._backlog and not self._spool_dirty:
                    return
                if self._past_deadline():
                    break
                from_spool = not self._backlog
                if from_spool:
                    self._spool_dirty = False  # cleared before reading: no wake-up is lost
            if from_spool:
                if self._deliver_from_spool():
                    with self._lock:
                        self._spool_dirty = True  # more to read
            else:
                self._deliver_next()
            self._counters.emit_warnings()
        self._abandon_backlog()

    # -- spool mode --------------------------------------------------------------------------

    def spooled(self, count: int) -> None:
        """``count`` more events are in the spool for this lane (appended, or found at start)."""
        with self._lock:
            self.offered += count
            self._spool_dirty = True
            if self._thread is None and self.threaded:
                self._start()
            self._cv.notify_all()

    def _deliver_from_spool(self) -> bool:
        """Read one batch at this lane's cursor, deliver it, acknowledge what is done.
        True if there may be more to read."""
        spool = self.spool
        if spool is None:
            return False
        records = spool.read(self.name, self.read_limit, self.max_batch_bytes)
        if not records:
            return False
        events: list[Event] = []
        seqs: list[int] = []
        unreadable = 0
        for seq, data in records:
            try:
                events.append(parse_event(data))
                seqs.append(seq)
            except ValueError:
                unreadable += 1  # checksummed, so only an older or newer schema gets here
        if unreadable:
            self._counters.drop("spool_corrupt", unreadable, "unreadable record", self.name)
        self._progress = 0
        rest: list[Event] = []
        try:
            rest = self._deliver(events)
        except Exception as exc:  # a bug of ours: count the rest, keep the lane alive
            logger.warning("signalkit: lane %s failed on a batch: %r", self.name, exc)
            self._counters.drop("internal_error", len(events) - self._progress, "", self.name)
            self._progress = len(events)
        # delivery keeps order, so what is done is a prefix: acknowledge up to its last record
        done_events = len(events) - len(rest)
        last_done = seqs[done_events - 1] if done_events else (0 if rest else records[-1][0])
        if not rest:
            last_done = records[-1][0]
        done_records = sum(1 for seq, _ in records if seq <= last_done)
        if done_records:
            spool.ack(self.name, last_done)
        with self._lock:
            self.done += done_records
            self._cv.notify_all()
        return not rest and len(records) >= self.read_limit

    def _abandon_backlog(self) -> None:
        """Count what the shutdown deadline left undelivered (once: under the lock)."""
        with self._lock:
            left = self._events
            self._backlog.clear()
            self._events = self._bytes = 0
            self.done += left
            self.abandoned += left
            self._cv.notify_all()
        if left:
            self._counters.drop("shutdown", left, f"{self.name}: not delivered in time", self.name)

    def drain_here(self, deadline: float | None) -> bool:
        """Deliver the backlog on the calling thread (serverless mode); False if the deadline
        passed first (what is left stays queued for the next call)."""
        with self._lock:
            self._deadline = deadline
        try:
            while True:
                with self._lock:
                    if not self._backlog:
                        return True
                    if self._past_deadline():
                        return False
                self._deliver_next()
        finally:
            with self._lock:
                if not self._closing:
                    self._deadline = None

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver_next(self) -> None:
        with self._lock:
            if not self._backlog:
                return
            batch = self._backlog.popleft()
            self._events -= len(batch.events)
            self._bytes -= batch.size
        self._progress = 0
        rest: list[Event] = []
        try:
            rest = self._deliver(batch.events)
        except Exception as exc:  # a bug of ours: count the rest, keep the lane alive
            logger.warning("signalkit: lane %s failed on a batch: %r", self.name, exc)
            self._counters.drop("internal_error", len(batch.events) - self._progress, "", self.name)
            self._progress = len(batch.events)
        with self._lock:
            if rest:  # stopped by a deadline: keep the rest, in order, for later or for join()
                size = batch.size * len(rest) // max(len(batch.events), 1)
                self._backlog.appendleft(_Batch(rest, size))
                self._events += len(rest)
                self._bytes += size
            self.done += len(batch.events) - len(rest)
            self._cv.notify_all()

    def _deliver(self, events: list[Event]) -> list[Event]:
        """Deliver ``events`` in parts within the sink's limits; ``_progress`` counts the
        events done with (delivered or dropped), so a failure midway is counted exactly. Returns
        the events not yet done when a deadline stopped it (else an empty list)."""
        parts: deque[list[Event]] = deque(self._split_to_limits(events))
        first_attempt = time.monotonic()
        attempt = 0
        self._progress = len(events) - sum(len(p) for p in parts)  # dropped as too large
        while parts:
            part = parts[0]
            outcome = self._attempt(part)
            if outcome is ExportResult.SUCCESS:
                self._counters.delivered_to(self.name, len(part))
                parts.popleft()
                self._progress += len(part)
                attempt = 0
                first_attempt = time.monotonic()
                continue
            self._counters.add("failed")
            failure = _as_failure(outcome)
            if failure.too_large:
                parts.popleft()
                if len(part) == 1:
                    self._give_up(part, "too_large", failure)
                    self._progress += 1
                else:
                    half = len(part) // 2
                    parts.appendleft(part[half:])
                    parts.appendleft(part[:half])
                continue
            if failure.unauthorized:
                self._counters.warn(
                    f"exporter:{self.name}",
                    "signalkit: %s refused our credentials (%s); keeping its data and trying "
                    "again in %.0f s",
                    self.name,
                    failure.message or failure.status,
                    self.policy.pause_s,
                )
                if not self._sleep(self.policy.pause_s):
                    return [e for p in parts for e in p]
                continue
            if not failure.retryable:
                parts.popleft()
                self._give_up(part, "rejected", failure)
                self._progress += len(part)
                continue
            attempt += 1
            elapsed = time.monotonic() - first_attempt
            p = self.policy
            if (p.max_attempts is not None and attempt >= p.max_attempts) or (
                p.max_elapsed_s is not None and elapsed >= p.max_elapsed_s
            ):
                parts.popleft()
                self._give_up(part, "retries_exhausted", failure)
                self._progress += len(part)
                attempt = 0
                first_attempt = time.monotonic()
                continue
            self._counters.add("retried")
            delay = backoff_delay(attempt, p, failure.retry_after_s, self._rng)
            self._counters.warn(
                f"exporter:{self.name}",
                "signalkit: %s did not take a batch (%s); retrying in %.1f s",
                self.name,
                failure.message or failure.status or "failed",
                delay,
            )
            if not self._sleep(delay):
                return [e for p in parts for e in p]
        return []

    def _attempt(self, events: Sequence[Event]) -> ExportResult | ExportFailure:
        try:
            outcome = self.exporter.export(events)
        except Exception as exc:
            return ExportFailure(retryable=True, message=f"export() raised {exc!r}"[:300])
        if isinstance(outcome, ExportResult | ExportFailure):
            return outcome
        return ExportFailure(retryable=True, message=f"export() returned {outcome!r:.100}")

    def _give_up(self, events: Sequence[Event], reason: str, failure: ExportFailure) -> None:
        said = f": {failure.message}" if failure.message else ""
        status = f" ({failure.status})" if failure.status else ""
        self._counters.drop(reason, len(events), f"{self.name}{status}{said}", self.name)

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if a shutdown/flush deadline comes first (then False)."""
        end = time.monotonic() + seconds
        with self._lock:
            while True:
                now = time.monotonic()
                deadline = self._deadline
                if deadline is not None and now >= deadline:
                    return False
                if now >= end:
                    return True
                self._cv.wait((end if deadline is None else min(end, deadline)) - now)

    def _split_to_limits(self, events: list[Event]) -> list[list[Event]]:
        """Cut a batch to the exporter's limits; drop (and count) single events too large."""
        max_n = self.max_batch_events
        max_b = self.max_batch_bytes
        max_e = self.max_event_bytes
        if max_n is None and max_b is None and max_e is None:
            return [events]
        parts: list[list[Event]] = []
        current: list[Event] = []
        current_bytes = 0
        too_large = 0
        for event in events:
            size = len(event.to_json()) + 1 if (max_b is not None or max_e is not None) else 0
            if (max_e is not None and size > max_e) or (max_b is not None and size > max_b):
                too_large += 1
                continue
            if current and (
                (max_n is not None and len(current) >= max_n)
                or (max_b is not None and current_bytes + size > max_b)
            ):
                parts.append(current)
                current, current_bytes = [], 0
            current.append(event)
            current_bytes += size
        if current:
            parts.append(current)
        if too_large:
            self._counters.drop(
                "too_large", too_large, f"{self.name}: over the sink's size limit", self.name
            )
        return parts


def _as_failure(outcome: ExportResult | ExportFailure) -> ExportFailure:
    if isinstance(outcome, ExportFailure):
        return outcome
    return ExportFailure(retryable=outcome is ExportResult.RETRY)


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
