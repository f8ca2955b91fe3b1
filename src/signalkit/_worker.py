"""The delivery pipeline: a bounded, non-blocking queue, a dispatcher thread, and one lane per
exporter (``_lanes.py``).

The caller's thread only appends to a deque under a short lock. The dispatcher, started with the
first event, takes batches by size or interval and offers each to every exporter's lane; lanes
deliver on their own threads, so one slow sink never holds back another. ``flush`` and
``shutdown`` always return within their timeout. A forked child gets an empty queue and fresh
threads (the parent delivers what it had queued), and the interpreter's exit waits a bounded
time for what is still queued. In ``sync`` mode (serverless) there are no threads at all:
``flush()`` delivers on the calling thread.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from ._errors import ConfigError
from ._instrument import Exposure
from ._lanes import Lane, exporter_name, wait_until
from ._spool import Spool
from ._stats import Counters, logger
from .events import Event
from .exporters.base import Exporter

__all__ = ["Delivery", "FullPolicy", "Pipeline"]

FullPolicy = Literal["drop_newest", "drop_oldest"]
Delivery = Literal["background", "sync"]


class Pipeline:
    """Queue, dispatcher and lanes shared by one client's exporters."""

    def __init__(
        self,
        exporters: Sequence[Exporter],
        counters: Counters,
        *,
        max_queue: int = 10_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        batch_size: int = 1000,
        interval_s: float = 1.0,
        on_full: FullPolicy = "drop_newest",
        exit_timeout_s: float = 2.0,
        delivery: Delivery = "background",
        spool: Path | None = None,
        spool_options: dict[str, Any] | None = None,
    ) -> None:
        self.exporters = list(exporters)
        self._counters = counters
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.on_full = on_full
        self.exit_timeout_s = exit_timeout_s
        self.delivery = delivery
        self.spool_root = spool
        self.spool_options = dict(spool_options or {})
        names: list[str] = []
        for exporter in self.exporters:
            base = name = exporter_name(exporter)
            n = 2
            while name in names:
                name, n = f"{base}#{n}", n + 1
            names.append(name)
        self.lanes = [
            Lane(
                e,
                n,
                counters,
                max_events=max_queue,
                max_bytes=max_queue_bytes,
                on_full=on_full,
                threaded=delivery == "background",
            )
            for e, n in zip(self.exporters, names, strict=True)
        ]
        self._reset()
        counters.on_warning = self._wake_for_warnings
        _live.add(self)
        if spool is not None and delivery == "background":
            # resume what an earlier run left in the spool now, not at the first new event
            with self._lock:
                self._start()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[tuple[Event | Exposure, int]] = deque()
        self._bytes = 0
        self._submitted = 0
        self.seq = 0
        """Events accepted (recorded) by this producer: the last ``seq`` given out."""
        self._completed = 0
        self._flush_target = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._exporters_shut = False
        self._warn_pending = False
        self._sync_lock = threading.Lock()
        self._spool: Spool | None = None
        self._spool_retry_at = 0.0
        for lane in self.lanes:
            lane.reset()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events accepted and not yet finished with by every exporter."""
        queued = self._submitted - self._completed
        return queued + max((lane.pending for lane in self.lanes), default=0)

    def lane_pending(self) -> dict[str, int]:
        queued = self._submitted - self._completed
        return {lane.name: queued + lane.pending for lane in self.lanes}

    def lane_recovered(self) -> dict[str, int]:
        return {lane.name: lane.recovered for lane in self.lanes}

    @property
    def exported(self) -> int:
        """Events every exporter has finished with."""
        if not self.lanes:
            return self._completed
        return min(lane.done for lane in self.lanes)

    # -- caller side -------------------------------------------------------------------------

    def submit(self, event: Event | Exposure, size: int) -> bool:
        """Queue ``event`` (of about ``size`` bytes) without blocking; False if it was dropped.

        Every caller of every signal runs this, so the usual case (room in the queue) is the
        first branch and takes one lock.
        """
        with self._lock:
            self.seq = seq = self.seq + 1  # under the queue's lock: seq follows queue order
            if event.__class__ is Exposure:
                event._seq = seq
            else:
                event.__dict__["seq"] = seq  # not yet published: still ours to set
            q = self._queue
            if (
                len(q) < self.max_queue
                and self._bytes + size <= self.max_queue_bytes
                and not self._closed
            ):
                q.append((event, size))
                self._bytes += size
                self._submitted += 1
                if len(q) == self.batch_size:
                    self._wake.notify()
                if self._thread is None and self.delivery == "background":
                    self._start()
                return True
            if self._closed:
                return False
            dropped_oldest = self._make_room(size)
            if dropped_oldest:
                q.append((event, size))
                self._bytes += size
                self._submitted += 1
                if self._thread is None and self.delivery == "background":
                    self._start()
        if dropped_oldest:
            self._counters.drop("queue_full", dropped_oldest, "drop_oldest policy")
            return True
        self._counters.drop(
            "queue_full", 1, f"queue holds {self.max_queue} events / {self.max_queue_bytes} B"
        )
        return False

    def _make_room(self, size: int) -> int:
        """The queue is full: with ``drop_oldest``, drop the oldest events until one of
        ``size`` bytes fits and return how many went (0: the new one must go instead)."""
        if self.on_full != "drop_oldest" or size > self.max_queue_bytes:
            return 0
        q = self._queue
        dropped = 0
        while q and (len(q) >= self.max_queue or self._bytes + size > self.max_queue_bytes):
            self._bytes -= q.popleft()[1]
            dropped += 1
        self._completed += dropped  # handled: counted as dropped by the caller
        return dropped

    def _wake_for_warnings(self) -> None:
        if self.delivery == "sync":
            return  # logged at the next flush(), which runs on the caller's own terms
        with self._lock:
            log_now = self._closed and self._thread is None
            if not log_now:
                self._warn_pending = True
                if self._thread is None:
                    self._start()
                self._wake.notify()
        if log_now:  # no thread any more (after shutdown): nothing else would ever log it
            self._counters.emit_warnings()

    def _start(self) -> None:
        t = threading.Thread(target=self._run, name="signalkit-worker", daemon=True)
        self._thread = t
        t.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued before this call is handled; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        self._counters.emit_warnings()  # a flush is allowed to block: log what is waiting
        if self.delivery == "sync":
            return self._flush_sync(deadline)
        with self._lock:
            target = self._submitted
            if self._completed < target:
                self._flush_target = max(self._flush_target, target)
                if self._thread is None or not self._thread.is_alive():
                    self._start()
                self._wake.notify()
            if not wait_until(self._done, lambda: self._completed >= target, deadline):
                return False
            # every event up to target has been offered to every lane
            targets = [(lane, lane.offered) for lane in self.lanes]
        done = all(lane.wait_done(t, deadline) for lane, t in targets)
        return self._force_flush_exporters(deadline) and done

    def _force_flush_exporters(self, deadline: float | None) -> bool:
        """Exporters with a buffer of their own (OpenTelemetry's) are flushed too."""
        ok = True
        for lane in self.lanes:
            force_flush = getattr(lane.exporter, "force_flush", None)
            if not callable(force_flush):
                continue
            remaining = 30.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                ok = force_flush(remaining) is not False and ok
            except Exception as exc:
                logger.warning("signalkit: %s.force_flush() failed: %r", lane.name, exc)
                ok = False
        return ok

    def _flush_sync(self, deadline: float | None) -> bool:
        """Serverless mode: deliver everything on this thread, within the deadline."""
        with self._sync_lock:
            self._dispatch_all()
            ok = True
            for lane in self.lanes:
                ok = lane.drain_here(deadline) and ok
            self._counters.emit_warnings()
            return self._force_flush_exporters(deadline) and ok

    def shutdown(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (within ``timeout``), stop the threads, shut the exporters.

        What could not be delivered in time is counted as dropped (``shutdown``); a batch an
        exporter is still working on stays pending, counted when the exporter returns.
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        if self.delivery == "sync":
            ok = self._flush_sync(deadline)
            with self._lock:
                self._closed = True
            for lane in self.lanes:
                lane.close(deadline)
                ok = lane.join(deadline) and ok
            self._shutdown_exporters(self.lanes)
            return ok
        with self._lock:
            if self._closed and self._thread is None and not self._queue:
                return True
            self._closed = True
            self._flush_target = self._submitted
            self._wake.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        with self._lock:
            dispatcher_done = thread is None or not thread.is_alive()
            left = len(self._queue)
            self._queue.clear()
            self._bytes = 0
            self._completed += left
            self._done.notify_all()
            if dispatcher_done:
                self._thread = None
        if left:
            self._counters.drop("shutdown", left, "not delivered before shutdown's timeout")
        for lane in self.lanes:
            lane.close(deadline)
        stopped = [lane for lane in self.lanes if lane.join(deadline)]
        self._shutdown_exporters(stopped)
        if self._spool is not None:
            # What is left in it is delivered by the next run. A lane still inside an export
            # finds the spool closed: its acknowledgement is lost and the next run re-sends
            # that batch (at least once, ids for dedupe).
            self._spool.close()
        self._counters.emit_warnings()
        return (
            dispatcher_done
            and not left
            and len(stopped) == len(self.lanes)
            and all(lane.pending == 0 and lane.abandoned == 0 for lane in self.lanes)
        )

    def _shutdown_exporters(self, lanes: list[Lane]) -> None:
        for lane in lanes:
            if lane.shut:
                continue
            lane.shut = True
            try:
                lane.exporter.shutdown()
            except Exception as exc:  # an exporter's bug must not break the host's exit
                logger.warning("signalkit: %s.shutdown() failed: %r", lane.name, exc)

    # -- dispatcher thread -------------------------------------------------------------------

    def _run(self) -> None:
        if self.spool_root is not None:
            self._open_spool()
        while True:
            with self._lock:
                deadline = time.monotonic() + self.interval_s
                while (
                    len(self._queue) < self.batch_size
                    and not self._wants_flush()
                    and not self._closed
                    and not self._warn_pending
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.wait(remaining)
                self._warn_pending = False
                batch, size = self._take(self.batch_size)
                stop = self._closed and not self._queue
            self._counters.emit_warnings()
            if batch:
                self._offer(batch, size)
            with self._lock:
                self._completed += len(batch)
                self._done.notify_all()
            if stop:
                return

    def _take(self, limit: int) -> tuple[list[Event | Exposure], int]:
        n = min(len(self._queue), limit)
        batch: list[Event | Exposure] = []
        size = 0
        for _ in range(n):
            event, event_size = self._queue.popleft()
            self._bytes -= event_size
            size += event_size
            batch.append(event)
        return batch, size

    @staticmethod
    def _events_of(batch: list[Event | Exposure]) -> list[Event]:
        # Exposure handles queued by the decorator become their frozen events here, off the
        # caller's thread.
        events: list[Event] = []
        for entry in batch:
            if isinstance(entry, Exposure):
                event = entry.event
                assert event is not None  # queued only once recorded
                events.append(event)
            else:
                events.append(entry)
        return events

    def _offer(self, queued: list[Event | Exposure], size: int) -> None:
        batch = self._events_of(queued)
        spool = self._open_spool()
        if spool is not None:
            result = spool.append([event.to_json() for event in batch])
            if result.ok:
                self._counters.add("spooled", len(batch))
                for lane in self.lanes:
                    lane.spooled(len(batch))
                return
            self._counters.warn(
                f"spool:{result.reason}",
                "signalkit: the spool refused a batch (%s); keeping it in memory",
                result.reason,
            )
        for lane in self.lanes:
            lane.offer(batch, size)

    def _open_spool(self) -> Spool | None:
        """The durable spool, opened on the dispatcher thread (never the caller's)."""
        if self._spool is not None or self.spool_root is None:
            return self._spool
        now = time.monotonic()
        if now < self._spool_retry_at:
            return None
        try:
            spool = Spool.open_slot(self.spool_root, on_full="reject", **self.spool_options)
        except ConfigError as exc:
            self._spool_retry_at = now + 30.0
            self._counters.warn(
                "spool:open", "signalkit: no spool (%s); delivering from memory", exc
            )
            return None
        self._spool = spool
        names = {lane.name for lane in self.lanes}
        for stale in set(spool.cursors()) - names:  # an exporter no longer configured
            left = spool.pending(stale)
            spool.remove_cursor(stale)
            if left:
                self._counters.warn(
                    f"spool:stale:{stale}",
                    "signalkit: exporter %r is no longer configured; its %d spooled events "
                    "are released",
                    stale,
                    left,
                )
        for lane in self.lanes:
            spool.add_cursor(lane.name)
            lane.spool = spool
            left = spool.pending(lane.name)
            if left:
                lane.recovered += left
                lane.spooled(left)
        return spool

    def _dispatch_all(self) -> None:
        while True:
            with self._lock:
                batch, size = self._take(self.batch_size)
            if not batch:
                return
            self._offer(batch, size)
            with self._lock:
                self._completed += len(batch)

    def _wants_flush(self) -> bool:
        return bool(self._queue) and self._completed < self._flush_target

    def _after_fork(self) -> None:
        self._reset()


_live: weakref.WeakSet[Pipeline] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pipeline in list(_live):
        pipeline._after_fork()


def _at_exit() -> None:
    for pipeline in list(_live):
        if not pipeline.closed or pipeline.pending:
            try:
                pipeline.shutdown(pipeline.exit_timeout_s)
            except Exception as exc:  # pragma: no cover - never let exit crash on us
                logger.warning("signalkit: shutdown at exit failed: %r", exc)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
