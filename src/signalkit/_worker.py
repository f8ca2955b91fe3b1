"""The delivery pipeline: a bounded, non-blocking queue and one batching worker thread.

The caller's thread only appends to a deque under a short lock. One daemon thread, started
with the first event, takes batches by size or interval and hands each to every exporter.
``flush`` and ``shutdown`` always return within their timeout. A forked child gets an empty
queue and a fresh worker (the parent delivers what it had queued), and the interpreter's
exit waits a bounded time for what is still queued.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Literal

from ._stats import Counters, logger
from .events import Event
from .exporters.base import Exporter, ExportFailure, ExportResult

__all__ = ["FullPolicy", "Pipeline"]

FullPolicy = Literal["drop_newest", "drop_oldest"]

_RETRY_DELAYS_S = (0.05, 0.2, 0.5)


def _name(exporter: Exporter) -> str:
    return type(exporter).__name__


class Pipeline:
    """Queue plus worker shared by one client's exporters."""

    def __init__(
        self,
        exporters: Sequence[Exporter],
        counters: Counters,
        *,
        max_queue: int = 10_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        batch_size: int = 512,
        interval_s: float = 1.0,
        on_full: FullPolicy = "drop_newest",
        exit_timeout_s: float = 2.0,
    ) -> None:
        self.exporters = list(exporters)
        self._counters = counters
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.on_full = on_full
        self.exit_timeout_s = exit_timeout_s
        self._reset()
        counters.on_warning = self._wake_for_warnings
        _live.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[tuple[Event, int]] = deque()
        self._bytes = 0
        self._submitted = 0
        self._completed = 0
        self._flush_target = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._exporters_shut = False
        self._warn_pending = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events accepted into the queue and not yet handled by every exporter."""
        return self._submitted - self._completed

    # -- caller side -------------------------------------------------------------------------

    def submit(self, event: Event, size: int) -> bool:
        """Queue ``event`` (of about ``size`` bytes) without blocking; False if it was dropped."""
        dropped_oldest = 0
        full = False
        with self._lock:
            if self._closed:
                return False
            q = self._queue
            if len(q) >= self.max_queue or self._bytes + size > self.max_queue_bytes:
                if self.on_full == "drop_oldest" and size <= self.max_queue_bytes:
                    while q and (
                        len(q) >= self.max_queue or self._bytes + size > self.max_queue_bytes
                    ):
                        self._bytes -= q.popleft()[1]
                        dropped_oldest += 1
                    self._completed += dropped_oldest  # handled: counted as dropped below
                else:
                    full = True
            if not full:
                q.append((event, size))
                self._bytes += size
                self._submitted += 1
                if len(q) == self.batch_size:
                    self._wake.notify()
            if self._thread is None:
                self._start()
        if dropped_oldest:
            self._counters.drop("queue_full", dropped_oldest, "drop_oldest policy")
        if full:
            self._counters.drop(
                "queue_full", 1, f"queue holds {self.max_queue} events / {self.max_queue_bytes} B"
            )
            return False
        return True

    def _wake_for_warnings(self) -> None:
        with self._lock:
            if self._closed and self._thread is None:
                log_now = True
            else:
                log_now = False
                self._warn_pending = True
                if self._thread is None:
                    self._start()
                self._wake.notify()
        if log_now:  # no worker any more (after shutdown): nothing else would ever log it
            self._counters.emit_warnings()

    def _start(self) -> None:
        t = threading.Thread(target=self._run, name="signalkit-worker", daemon=True)
        self._thread = t
        t.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event queued before this call is handled; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        self._counters.emit_warnings()  # a flush is allowed to block: log what is waiting
        with self._lock:
            target = self._submitted
            if self._completed >= target:
                return True
            self._flush_target = max(self._flush_target, target)
            if self._thread is None or not self._thread.is_alive():
                self._start()
            self._wake.notify()
            while self._completed < target:
                if deadline is None:
                    self._done.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._done.wait(remaining)
            return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Deliver what is queued (within ``timeout``), stop the worker, shut the exporters.

        What could not be delivered in time is counted as dropped (``shutdown``).
        """
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
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
            clean = thread is None or not thread.is_alive()
            # What is still queued will never be exported. A batch an exporter is still
            # working on stays pending: the worker counts it when the exporter returns.
            left = len(self._queue)
            self._queue.clear()
            self._bytes = 0
            self._completed += left
            self._done.notify_all()
            if clean:
                self._thread = None
        if left:
            self._counters.drop("shutdown", left, "not delivered before shutdown's timeout")
        if clean:
            self._shutdown_exporters()
        return clean and not left

    def _shutdown_exporters(self) -> None:
        if self._exporters_shut:
            return
        self._exporters_shut = True
        for exporter in self.exporters:
            try:
                exporter.shutdown()
            except Exception as exc:  # an exporter's bug must not break the host's exit
                logger.warning("signalkit: %s.shutdown() failed: %r", _name(exporter), exc)

    # -- worker side -------------------------------------------------------------------------

    def _run(self) -> None:
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
                n = min(len(self._queue), self.batch_size)
                batch: list[Event] = []
                for _ in range(n):
                    event, size = self._queue.popleft()
                    self._bytes -= size
                    batch.append(event)
                stop = self._closed and not self._queue
            self._counters.emit_warnings()
            if batch:
                self._export(batch)
            with self._lock:
                self._completed += n
                self._done.notify_all()
            if stop:
                self._counters.emit_warnings()
                return

    def _wants_flush(self) -> bool:
        return bool(self._queue) and self._completed < self._flush_target

    def _export(self, batch: list[Event]) -> None:
        for exporter in self.exporters:
            name = _name(exporter)
            result = ExportResult.RETRY
            for attempt in range(len(_RETRY_DELAYS_S) + 1):
                try:
                    outcome = exporter.export(batch)
                except Exception as exc:
                    logger.warning("signalkit: %s.export() raised %r", name, exc)
                    outcome = ExportResult.RETRY
                if isinstance(outcome, ExportFailure):
                    result = ExportResult.RETRY if outcome.retryable else ExportResult.FAILURE
                else:
                    result = outcome
                if result is ExportResult.SUCCESS:
                    self._counters.delivered_to(name, len(batch))
                    break
                self._counters.add("failed")
                if result is ExportResult.FAILURE or attempt == len(_RETRY_DELAYS_S):
                    break
                if self._closed:
                    break
                self._counters.add("retried")
                time.sleep(_RETRY_DELAYS_S[attempt])
            if result is not ExportResult.SUCCESS:
                self._counters.drop("exporter_failed", len(batch), f"{name} did not accept a batch")
        self._counters.add("exported", len(batch))

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
