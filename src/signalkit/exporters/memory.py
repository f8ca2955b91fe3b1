"""Keeps exported events in a list: for tests and notebooks."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..events import Event
from .base import ExportResult

__all__ = ["MemoryExporter"]


class MemoryExporter:
    """Collects every exported event in :attr:`events`, in export order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self.batches = 0
        self.is_shutdown = False

    @property
    def events(self) -> list[Event]:
        """A copy of the events exported so far."""
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def export(self, batch: Sequence[Event]) -> ExportResult:
        with self._lock:
            self._events.extend(batch)
            self.batches += 1
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        self.is_shutdown = True
