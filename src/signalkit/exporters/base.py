"""The protocol every sink implements: ``export(batch) -> ExportResult`` and ``shutdown()``."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..events import Event

__all__ = ["ExportResult", "Exporter"]


class ExportResult(enum.Enum):
    """What became of a batch."""

    SUCCESS = "success"
    """Delivered (or durably handed over)."""
    RETRY = "retry"
    """Not delivered, worth trying again later (connection error, 429, 5xx)."""
    FAILURE = "failure"
    """Not delivered and never will be (the sink refused it); the events count as dropped."""


@runtime_checkable
class Exporter(Protocol):
    """A destination for batches of events. Called only from signalkit's worker thread."""

    def export(self, batch: Sequence[Event]) -> ExportResult:
        """Deliver ``batch``; must not raise (an exception counts as RETRY)."""
        ...

    def shutdown(self) -> None:
        """Release resources; called once, after the last ``export``."""
        ...
