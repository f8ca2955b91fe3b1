"""Test your own instrumentation: capture the events your code records, in memory.

Installed as a pytest plugin (entry point ``signalkit``), so the fixture needs no import::

    def test_reply_draft_is_recorded(signalkit_events):
        reply = draft_reply(ticket)                      # your code, decorated with signalkit
        signalkit.action(signalkit.current_exposure(), "accepted")
        assert signalkit_events.kinds() == ["exposure", "action"]
        assert signalkit_events.last.score.polarity > 0

Outside pytest (or for a client your code builds itself) use :func:`capture_signals`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import signalkit

from ._client import Client
from ._stats import Stats
from .events import Event
from .exporters.memory import MemoryExporter

if TYPE_CHECKING:
    import pytest

__all__ = ["TEST_SECRET", "CapturedSignals", "capture_signals", "signalkit_events"]

TEST_SECRET = "signalkit-test-secret-not-for-production"
"""The secret of the fixture's client: tokens made in a test verify in the same test."""


class CapturedSignals:
    """The events a client recorded while capturing, in record order."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._events: list[Event] = []

    def _capture(self, event: Event) -> Event:
        self._events.append(event)
        return event

    @property
    def events(self) -> list[Event]:
        """Every event recorded so far (a copy)."""
        return list(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __getitem__(self, index: int) -> Event:
        return self._events[index]

    @property
    def last(self) -> Event:
        """The most recent event; raises AssertionError when nothing was recorded."""
        if not self._events:
            raise AssertionError("no signalkit event was recorded")
        return self._events[-1]

    def kinds(self) -> list[str]:
        """The kinds of the events, in order: ``["exposure", "action", ...]``."""
        return [e.kind for e in self._events]

    def of_kind(self, kind: str) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self._events if e.kind == kind]

    def find(self, kind: str, **fields: Any) -> Event:
        """The one event of ``kind`` whose fields equal ``fields``; AssertionError otherwise."""
        found = [
            e
            for e in self.of_kind(kind)
            if all(getattr(e, k, None) == v for k, v in fields.items())
        ]
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one {kind} event with {fields}, found {len(found)} "
                f"among {self.kinds()}"
            )
        return found[0]

    @property
    def stats(self) -> Stats:
        """The capturing client's counters (rejections included)."""
        return self.client.stats

    def clear(self) -> None:
        self._events.clear()


@contextmanager
def capture_signals(client: Client | None = None) -> Iterator[CapturedSignals]:
    """Capture what ``client`` (default: the default client) records inside the block.

    Events are captured as recorded — scored and processed, before delivery — so no flush
    is needed. Delivery to the client's exporters is unchanged.
    """
    target = client or signalkit.get_client()
    captured = CapturedSignals(target)
    target.processors.append(captured._capture)
    try:
        yield captured
    finally:
        target.processors.remove(captured._capture)


def _fixture(request: pytest.FixtureRequest) -> Iterator[CapturedSignals]:
    previous = signalkit._default
    client = Client(
        "test", exporters=[MemoryExporter()], secret=TEST_SECRET, strict=True, exit_timeout_s=0
    )
    signalkit._default = client
    try:
        with capture_signals(client) as captured:
            yield captured
    finally:
        signalkit._default = previous
        client.shutdown(timeout=1.0)


try:
    import pytest
except ImportError:  # pragma: no cover - the module is usable without pytest
    pass
else:
    signalkit_events = pytest.fixture(name="signalkit_events")(_fixture)
    """Pytest fixture: a strict, in-memory default client for the test, and its captured events.

    Module-level calls (``signalkit.action``...) and the ``signalkit.recommendation``
    decorator record into it; bad input raises (``strict=True``) so instrumentation bugs fail
    the test. Tokens use :data:`TEST_SECRET`.
    """
