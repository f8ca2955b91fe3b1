"""Edges of instrumentation a host depends on: failed calls, request boundaries, warnings."""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Iterator

import pytest

import signalkit as sk

SECRET = "s" * 32


@pytest.fixture
def client() -> Iterator[sk.Client]:
    c = sk.Client("edges", exporters=[sk.MemoryExporter()], secret=SECRET, warn_interval_s=0)
    yield c
    c.shutdown(2)


def test_a_decorated_call_that_raises_leaves_no_current_exposure(client: sk.Client) -> None:
    @client.recommendation("reply")
    def broken() -> str:
        raise TimeoutError("model timed out")

    with sk.context():  # start from a clean request
        with pytest.raises(TimeoutError):
            broken()
        assert sk.current_exposure() is None
    client.flush(2)
    assert client.exporters[0].events == []  # type: ignore[attr-defined]


async def test_an_async_decorated_call_that_raises_restores_the_previous_exposure(
    client: sk.Client,
) -> None:
    @client.recommendation("ok")
    async def good() -> int:
        return 1

    @client.recommendation("broken")
    async def broken() -> int:
        raise ValueError("bad prompt")

    await good()
    before = sk.current_exposure()
    assert before is not None
    assert before.surface == "ok"
    with pytest.raises(ValueError, match="bad prompt"):
        await broken()
    assert sk.current_exposure() is before


def test_a_failed_exposure_block_restores_the_previous_exposure(client: sk.Client) -> None:
    with client.exposure("first") as first:
        pass
    with pytest.raises(KeyError), client.exposure("second"):
        raise KeyError("x")
    assert sk.current_exposure() is first


def test_each_request_context_starts_without_a_current_exposure(client: sk.Client) -> None:
    with client.exposure("previous-request"):
        pass
    with sk.context(user_id="u2"):
        assert sk.current_exposure() is None
        with client.exposure("this-request") as exp:
            pass
        assert sk.current_exposure() is exp
    assert sk.current_exposure() is not None
    assert sk.current_exposure().surface == "previous-request"  # type: ignore[union-attr]


def test_a_rejected_exposure_has_no_token_and_signals_on_it_are_rejected(
    client: sk.Client,
) -> None:
    with client.exposure("") as exp:  # an empty surface is invalid
        pass
    assert exp.event is None
    assert exp.token == ""
    assert client.action(exp.token, "accepted") is None
    assert client.stats.rejected == {"invalid": 2}
    assert client.stats.rejected_fields == {"surface": 1, "exposure": 1}


def test_a_rating_scale_may_be_a_list(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        pass
    event = client.feedback(exp, 4, scale=[1, 5])
    assert event is not None
    assert event.scale == (1.0, 5.0)
    assert event.score is not None
    assert event.score.polarity == pytest.approx(0.5)


def test_warnings_are_logged_by_the_worker_never_on_the_callers_thread(
    client: sk.Client,
) -> None:
    seen: list[str] = []

    class ThreadRecorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(threading.current_thread().name)

    handler = ThreadRecorder(level=logging.WARNING)
    logger = logging.getLogger("signalkit")
    logger.addHandler(handler)
    try:
        with client.exposure("s") as exp:
            pass
        for _ in range(3):
            assert client.action(exp, "") is None  # rejected: warned
        assert client.action("sk1.garbage") is None
        worker_done = threading.Event()
        # wait for the worker to log, without flush() (which may log from the caller)
        for _ in range(200):
            if len(seen) >= 4:
                worker_done.set()
                break
            threading.Event().wait(0.01)
        assert worker_done.is_set(), seen
        assert set(seen) == {"signalkit-worker"}
    finally:
        logger.removeHandler(handler)


def test_the_exposure_event_a_handle_shows_is_the_one_delivered(client: sk.Client) -> None:
    @client.recommendation("reply", model="m", model_version="v1", items=lambda r: r)
    def rank() -> list[str]:
        return ["a", "b"]

    for _ in range(50):
        rank()
        exp = sk.current_exposure()
        assert exp is not None
        assert exp.event is not None  # built on first read, or by the dispatcher: same object
        assert exp.event.items[1].id == "b"
        assert exp.event.seq >= 1
    assert client.flush(5)
    delivered = [e for e in client.exporters[0].events if e.kind == "exposure"]  # type: ignore[attr-defined]
    assert len(delivered) == 50
    assert exp.event is delivered[-1]
    assert [e.seq for e in delivered] == sorted(e.seq for e in delivered)
    assert all(type(e).model_validate(e.model_dump()) == e for e in delivered)


def test_rejections_keyed_by_the_callers_own_names_stay_bounded(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        pass
    for i in range(1_000):  # e.g. a browser relay sending junk attribute keys
        assert client.action(exp, "clicked", attributes={f"k{i}": [i]}) is None
    stats = client.stats
    assert stats.rejected == {"invalid": 1_000}
    assert len(stats.rejected_fields) <= 257
    assert sum(stats.rejected_fields.values()) == 1_000
    assert stats.rejected_fields["(other)"] == 1_000 - 256


def test_a_broken_tracer_costs_the_trace_link_not_the_call_or_the_signal(
    client: sk.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an application whose OpenTelemetry is half set up: asking for the current span raises
    broken = types.ModuleType("opentelemetry.trace")

    def get_current_span() -> object:
        raise RuntimeError("tracer provider misconfigured")

    broken.get_current_span = get_current_span  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", broken)

    @client.recommendation("reply", model="drafter")
    def draft() -> str:
        return "the reply"

    assert draft() == "the reply"  # the first call (arguments checked) and the usual one
    assert draft() == "the reply"
    exposure = sk.current_exposure()
    assert exposure is not None
    assert client.action(exposure, "accepted") is not None
    client.flush(2)
    events = client.exporters[0].events  # type: ignore[attr-defined]
    assert [e.kind for e in events] == ["exposure", "exposure", "action"]
    assert all(e.trace_id is None for e in events)
    assert client.stats.rejected == {}
