"""The protocol every sink implements: ``export(batch) -> ExportResult`` and ``shutdown()``.

An exporter makes one attempt per ``export`` call and says what happened; signalkit's delivery
lanes own retries, backoff, batch splitting and pausing, using the exporter's optional
``retry_policy`` and size limits. A minimal exporter needs only ``export`` and ``shutdown``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..events import Event

__all__ = ["ExportFailure", "ExportResult", "Exporter", "RetryPolicy"]


class ExportResult(enum.Enum):
    """What became of a batch."""

    SUCCESS = "success"
    """Delivered (or durably handed over)."""
    RETRY = "retry"
    """Not delivered, worth trying again later (connection error, 429, 5xx)."""
    FAILURE = "failure"
    """Not delivered and never will be (the sink refused it); the events count as dropped."""


@dataclass(frozen=True, slots=True)
class ExportFailure:
    """A failed attempt, with what the sink said; return it instead of a bare ExportResult
    when the sink gave more to go on.

    The delivery lane retries when ``retryable`` (never sooner than ``retry_after_s``), splits
    the batch in halves when ``too_large`` (a single event too large is dropped, counted
    ``too_large``), and pauses the exporter keeping its data when ``unauthorized``.
    ``message`` is what the sink said, shown in the warning; it must not contain secrets.
    """

    retryable: bool
    message: str = ""
    retry_after_s: float | None = None
    too_large: bool = False
    unauthorized: bool = False
    status: int | None = None
    """The HTTP status, when there was one."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a lane retries an exporter: jittered exponential backoff with a cap.

    Attempt ``n`` (from 1) has a ceiling ``c = min(cap_s, base_s * 2**(n-1))`` and waits
    ``uniform(c/2, c)`` (``jitter="equal"``, the default) or ``uniform(0, c)`` (``"full"``),
    but never less than the sink's Retry-After (itself capped at ``max_retry_after_s``). The
    batch is given up (counted dropped ``retries_exhausted``) after ``max_attempts`` attempts or
    ``max_elapsed_s`` since its first attempt, whichever comes first; ``None``: no limit.

    The defaults retry a batch for up to 10 minutes with at most 10 s between attempts, so a
    sink that comes back is found within 10 s, and make about 11 attempts in a minute of
    outage (RELIABILITY R3 asks for both: full jitter would average 5 s between attempts
    and make ~15). While a sink is down the memory bound (or the spool) decides what is kept,
    and a batch the sink never accepts cannot block the ones behind it for longer than
    ``max_elapsed_s``.
    """

    base_s: float = 1.0
    cap_s: float = 10.0
    max_attempts: int | None = None
    max_elapsed_s: float | None = 600.0
    max_retry_after_s: float = 300.0
    jitter: Literal["equal", "full"] = "equal"
    pause_s: float = 60.0
    """How long to wait, keeping the data, after the sink refused our credentials (401/403)."""


@runtime_checkable
class Exporter(Protocol):
    """A destination for batches of events. Called only from signalkit's delivery threads.

    Optional attributes a lane reads when present: ``retry_policy`` (:class:`RetryPolicy`),
    ``max_batch_events``, ``max_batch_bytes`` and ``max_event_bytes`` (the sink's limits, in
    events and in bytes of each event's JSON), ``checks_limits`` (True when ``export`` itself
    answers ``too_large`` for a batch over its byte limits: the lane then cuts by count only),
    and ``name`` (used in stats and warnings).
    """

    def export(self, batch: Sequence[Event]) -> ExportResult | ExportFailure:
        """Deliver ``batch`` in one attempt; must not raise (an exception counts as RETRY)."""
        ...

    def shutdown(self) -> None:
        """Release resources; called once, after the last ``export``."""
        ...
