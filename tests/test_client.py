"""The client: exposures, signals, their derived measures, validation, and delivery."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import signalkit as sk
from signalkit._ids import new_id
from signalkit.events import read_jsonl

SECRET = "s" * 32
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at_ms(ms: float) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def after(exp: sk.Exposure, ms: float) -> datetime:
    return at_ms(exp.shown_at_ms + ms)


def make_client(*exporters: Any, **options: Any) -> sk.Client:
    return sk.Client("test-service", exporters=list(exporters), secret=SECRET, **options)


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "signalkit-worker" and t.is_alive()]


# -- the exposure a signal refers to: handle, token or bare id ------------------------------------

SIGNALS: dict[str, Callable[[sk.Client, Any], sk.Event | None]] = {
    "action": lambda c, target: c.action(target, "accepted"),
    "correction": lambda c, target: c.correction(target, "draft", "edited draft"),
    "toggle": lambda c, target: c.toggle(target, "expanded", element="why"),
    "outcome": lambda c, target: c.outcome(target, "ticket_resolved", success=True),
    "feedback": lambda c, target: c.feedback(target, rating=1),
}
TARGETS: dict[str, Callable[[sk.Exposure], Any]] = {
    "handle": lambda exp: exp,
    "token": lambda exp: exp.token,
    "bare_id": lambda exp: exp.id,
    "bare_id_upper_case": lambda exp: exp.id.upper(),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_every_signal_method_accepts_a_handle_a_token_or_a_bare_id(
    client: sk.Client, exposure: sk.Exposure, signal: str, target: str
) -> None:
    event = SIGNALS[signal](client, TARGETS[target](exposure))
    assert event is not None, client.stats.rejected
    assert event.kind == signal
    assert event.exposure_id == exposure.id
    assert event.service == "test-service"
    assert event.score is not None


def test_a_bare_id_is_case_insensitive(client: sk.Client, exposure: sk.Exposure) -> None:
    lower = client.action(exposure.id, "accepted", at=after(exposure, 1_500))
    upper = client.action(exposure.id.upper(), "accepted", at=after(exposure, 1_500))
    assert lower is not None
    assert upper is not None
    assert upper.exposure_id == lower.exposure_id == exposure.id
    assert upper.time_to_action_ms == lower.time_to_action_ms == 1_500
    assert upper.subject == lower.subject


@pytest.mark.parametrize("target", ["handle", "token", "bare_id"])
def test_a_signal_carries_the_model_of_its_exposure(
    client: sk.Client, exposure: sk.Exposure, target: str
) -> None:
    event = client.action(TARGETS[target](exposure), "accepted")
    assert event is not None
    assert event.model == sk.ModelRef(name="drafter", version="v1")


def test_a_signal_method_rejects_a_target_that_is_no_exposure(client: sk.Client) -> None:
    for target in (None, 42, "ticket-42", b"sk1.", object()):
        assert client.action(target, "accepted") is None  # type: ignore[arg-type]
    assert client.stats.rejected_fields == {"exposure": 5}


def test_a_bare_id_that_is_not_a_uuid_is_rejected(strict_client: sk.Client) -> None:
    with pytest.raises(sk.InvalidEvent) as info:
        strict_client.action("zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "accepted")
    assert info.value.field == "exposure"


# -- derived measures: time-to-action, delay, dwell ----------------------------------------------


def test_time_to_action_comes_from_the_token_in_another_process(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    elsewhere = sk.MemoryExporter()
    other = make_client(elsewhere)  # another process: shares only the secret
    try:
        event = other.action(exposure.token, "accepted", at=after(exposure, 2_500))
        assert event is not None
        assert event.time_to_action_ms == 2_500
        assert event.exposure_id == exposure.id
        assert event.model == exposure.model
        assert event.producer_id != client.producer_id
        other.flush(2)
        assert elsewhere.events == [event]
    finally:
        other.shutdown(timeout=2)


def test_a_token_from_a_client_with_another_secret_is_rejected(exposure: sk.Exposure) -> None:
    other = sk.Client("svc", exporters=[sk.MemoryExporter()], secret="x" * 32)
    try:
        assert other.action(exposure.token, "accepted") is None
        assert other.stats.rejected == {"token_unknown_key": 1}
    finally:
        other.shutdown(timeout=2)


def test_time_to_action_from_a_handle_and_a_known_bare_id(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    by_handle = client.action(exposure, "accepted", at=after(exposure, 700))
    by_id = client.action(exposure.id, "clicked", at=after(exposure, 900))
    assert by_handle is not None
    assert by_id is not None
    assert by_handle.time_to_action_ms == 700
    assert by_id.time_to_action_ms == 900


def test_time_to_action_is_unknown_for_a_bare_id_this_process_never_saw(
    client: sk.Client,
) -> None:
    event = client.action(new_id(), "accepted")
    assert event is not None
    assert event.time_to_action_ms is None


def test_time_to_action_is_measured_from_when_the_output_was_shown(
    client: sk.Client,
) -> None:
    with client.exposure("s") as exp:
        time.sleep(0.05)  # the AI call takes a while; the clock starts when it is shown
    event = client.action(exp, "accepted")
    assert event is not None
    assert event.time_to_action_ms is not None
    assert event.time_to_action_ms < 50


def test_outcome_delay_is_measured_from_the_exposure(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.outcome(exposure.token, "purchase", value=30, at=after(exposure, 3_600_000))
    assert event is not None
    assert event.delay_ms == 3_600_000
    assert event.value == 30.0


def test_a_collapse_gets_its_dwell_from_the_previous_expand(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    opened = client.toggle(exposure, "expanded", element="why", at=after(exposure, 1_000))
    closed = client.toggle(exposure.token, "collapsed", element="why", at=after(exposure, 2_200))
    assert opened is not None
    assert closed is not None
    assert opened.dwell_ms is None
    assert closed.dwell_ms == 1_200
    assert closed.score is not None
    assert closed.score.polarity < 0


def test_a_collapse_of_another_element_has_no_dwell(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    client.toggle(exposure, "expanded", element="why", at=after(exposure, 1_000))
    closed = client.toggle(exposure, "collapsed", element="sources", at=after(exposure, 5_000))
    assert closed is not None
    assert closed.dwell_ms is None


def test_an_explicit_dwell_wins_over_the_derived_one(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    client.toggle(exposure, "expanded", at=after(exposure, 1_000))
    closed = client.toggle(exposure, "collapsed", dwell_ms=30_000, at=after(exposure, 2_000))
    assert closed is not None
    assert closed.dwell_ms == 30_000


def test_a_signal_a_little_before_its_exposure_is_clock_skew(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.action(exposure, "accepted", at=after(exposure, -30_000))
    assert event is not None
    assert event.time_to_action_ms == 0


def test_a_signal_long_before_its_exposure_is_rejected_naming_at(
    strict_client: sk.Client,
) -> None:
    with strict_client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidEvent) as info:
        strict_client.action(exp, "accepted", at=after(exp, -3_600_000))
    assert info.value.field == "at"


# -- at=: backfilling ----------------------------------------------------------------------------


def test_at_backfills_the_event_time(client: sk.Client, exposure: sk.Exposure) -> None:
    when = after(exposure, 45_000)
    for event in (
        client.action(exposure, "accepted", at=when),
        client.correction(exposure, "a", "b", at=when),
        client.toggle(exposure, "expanded", at=when),
        client.outcome(exposure, "done", at=when),
        client.feedback(exposure, rating=1, at=when),
    ):
        assert event is not None
        assert event.ts == when


def test_at_accepts_any_timezone_and_stores_utc(client: sk.Client, exposure: sk.Exposure) -> None:
    when = after(exposure, 10_000).astimezone(timezone_plus(5, 30))
    event = client.action(exposure, "accepted", at=when)
    assert event is not None
    assert event.ts == when
    assert event.ts.utcoffset() == timedelta(0)
    assert event.time_to_action_ms == 10_000


def timezone_plus(hours: int, minutes: int = 0) -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=hours, minutes=minutes))


def test_exposure_at_backfills_a_historical_exposure(client: sk.Client) -> None:
    shown = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    with client.exposure("s", at=shown) as exp:
        pass
    assert exp.event is not None
    assert exp.event.ts == shown
    assert client.verify(exp.token, at=shown).shown_at_ms == int(shown.timestamp() * 1000)
    action = client.action(exp.token, "accepted", at=shown + timedelta(seconds=8))
    assert action is not None
    assert action.time_to_action_ms == 8_000


def test_a_pre_1970_backfilled_exposure_never_raises_from_its_token(client: sk.Client) -> None:
    with client.exposure("s", at=datetime(1960, 1, 1, tzinfo=UTC)) as exp:
        pass
    assert isinstance(exp.token, str)
    assert exp.event is None or uuid.UUID(exp.event.id).version == 7


@pytest.mark.parametrize("bad", [datetime(2025, 1, 1, 12, 0), "2025-01-01T12:00:00Z", 1.7e9])
def test_a_naive_or_non_datetime_at_is_rejected_naming_at(
    strict_client: sk.Client, bad: object
) -> None:
    with strict_client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidEvent) as info:
        strict_client.action(exp, "accepted", at=bad)  # type: ignore[arg-type]
    assert info.value.field == "at"
    assert "at" in str(info.value)


def test_a_naive_at_is_counted_as_a_rejection_of_at(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    assert client.outcome(exposure, "done", at=datetime(2025, 1, 1)) is None
    assert client.stats.rejected_fields == {"at": 1}


# -- attributes ----------------------------------------------------------------------------------


def test_flat_scalar_attributes_are_recorded(client: sk.Client, exposure: sk.Exposure) -> None:
    attrs = {"plan": "pro", "seats": 12, "ratio": 0.5, "beta": True}
    event = client.action(exposure, "accepted", attributes=attrs)
    assert event is not None
    assert event.attributes == attrs
    attrs["plan"] = "changed after the call"
    assert event.attributes["plan"] == "pro"  # the event keeps its own copy


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"ctx": {"a": 1}}, "attributes.ctx"),
        ({"tags": ["a", "b"]}, "attributes.tags"),
        ({"pair": (1, 2)}, "attributes.pair"),
        ({"missing": None}, "attributes.missing"),
        ({"blob": b"x"}, "attributes.blob"),
        ({"score": float("nan")}, "attributes.score"),
        ({"score": float("inf")}, "attributes.score"),
        ({"big": 2**64}, "attributes.big"),
        ({"long": "x" * 5000}, "attributes.long"),
        ({1: "numeric key"}, "attributes"),
        ({"": "empty key"}, "attributes"),
        ([("a", 1)], "attributes"),
        ({f"k{i}": i for i in range(100)}, "attributes"),
    ],
)
def test_attributes_that_are_not_flat_scalars_are_rejected_naming_the_key(
    strict_client: sk.Client, attributes: Any, field: str
) -> None:
    with strict_client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidEvent) as info:
        strict_client.action(exp, "accepted", attributes=attributes)
    assert info.value.field == field


def test_exposure_attributes_are_validated_when_it_is_recorded(client: sk.Client) -> None:
    with client.exposure("s", attributes={"nested": {"a": 1}}) as exp:
        pass
    assert exp.event is None
    assert client.stats.rejected_fields == {"attributes.nested": 1}


# -- exposures: the decorator --------------------------------------------------------------------


def test_the_recommendation_decorator_returns_the_result_unchanged_and_records_an_exposure(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    reply = object()

    @client.recommendation("reply-draft", model="drafter", model_version="2026-11-01")
    def draft_reply(ticket: str, *, tone: str) -> object:
        assert ticket == "t-1"
        assert tone == "warm"
        return reply

    assert draft_reply("t-1", tone="warm") is reply
    exp = sk.current_exposure()
    assert exp is not None
    assert exp.event is not None
    assert exp.event.surface == "reply-draft"
    assert exp.event.model == sk.ModelRef(name="drafter", version="2026-11-01")
    client.flush(2)
    assert memory.events == [exp.event]


async def test_the_recommendation_decorator_works_on_async_functions(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    @client.recommendation("search", model="ranker", items=lambda result: result)
    async def rank(query: str) -> list[str]:
        await asyncio.sleep(0)
        return ["doc-1", "doc-2"]

    result = await rank("refund")
    assert result == ["doc-1", "doc-2"]
    exp = sk.current_exposure()
    assert exp is not None
    assert exp.event is not None
    assert exp.event.surface == "search"
    assert [item.id for item in exp.event.items] == ["doc-1", "doc-2"]
    assert await client.aflush(2)
    assert memory.events == [exp.event]


def test_a_decorated_coroutine_function_is_still_a_coroutine_function(client: sk.Client) -> None:
    import inspect

    @client.recommendation("s")
    async def rank() -> list[str]:
        return []

    @client.recommendation("s")
    def draft() -> str:
        return ""

    assert inspect.iscoroutinefunction(rank)
    assert not inspect.iscoroutinefunction(draft)


def test_the_decorator_keeps_the_function_name_and_docstring(client: sk.Client) -> None:
    @client.recommendation("s")
    def draft_reply() -> str:
        """Draft a reply."""
        return ""

    assert draft_reply.__name__ == "draft_reply"
    assert draft_reply.__doc__ == "Draft a reply."


def test_current_exposure_inside_the_call_is_the_exposure_being_recorded(
    client: sk.Client,
) -> None:
    seen: list[sk.Exposure | None] = []

    @client.recommendation("reply-draft")
    def draft() -> str:
        seen.append(sk.current_exposure())
        return "reply"

    draft()
    assert seen[0] is sk.current_exposure()
    assert seen[0] is not None
    assert seen[0].event is not None


def test_each_decorated_call_records_its_own_exposure(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    @client.recommendation("s")
    def draft() -> str:
        return "x"

    draft()
    first = sk.current_exposure()
    draft()
    second = sk.current_exposure()
    assert first is not None
    assert second is not None
    assert first.id != second.id
    client.flush(2)
    assert [e.id for e in memory.events] == [first.id, second.id]


def test_the_decorator_measures_the_latency_of_the_ai_call(client: sk.Client) -> None:
    @client.recommendation("s")
    def slow() -> str:
        time.sleep(0.05)
        return "x"

    slow()
    exp = sk.current_exposure()
    assert exp is not None
    assert exp.event is not None
    assert exp.event.latency_ms is not None
    assert 50 <= exp.event.latency_ms < 5_000


def test_a_decorated_call_that_raises_records_nothing_and_the_exception_propagates(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    @client.recommendation("s")
    def broken() -> str:
        raise KeyError("model down")

    with pytest.raises(KeyError, match="model down"):
        broken()
    client.flush(2)
    assert memory.events == []
    assert client.stats.recorded == 0


async def test_an_async_decorated_call_that_raises_records_nothing(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    @client.recommendation("s")
    async def broken() -> str:
        raise TimeoutError("model slow")

    with pytest.raises(TimeoutError):
        await broken()
    await client.aflush(2)
    assert memory.events == []


def test_an_items_extractor_that_raises_does_not_break_the_call(client: sk.Client) -> None:
    @client.recommendation("s", items=lambda result: result["missing"])
    def rank() -> dict[str, list[str]]:
        return {"ids": ["a"]}

    assert rank() == {"ids": ["a"]}
    exp = sk.current_exposure()
    assert exp is not None
    assert exp.event is not None
    assert exp.event.items == ()


# -- exposures: the context manager --------------------------------------------------------------


def test_the_exposure_context_manager_records_the_impression_list_in_order(
    client: sk.Client,
) -> None:
    with client.exposure("search", model="ranker", model_version="v7", user_id="u1") as exp:
        exp.items = [
            "doc-9",
            sk.Item(id="doc-3", propensity=0.4, score=0.91),
            17,
            sk.Item(id="doc-5", position=7, propensity=0.05),
        ]
    assert exp.event is not None
    items = exp.event.items
    assert [i.id for i in items] == ["doc-9", "doc-3", "17", "doc-5"]
    assert [i.position for i in items] == [0, 1, 2, 7]
    assert [i.propensity for i in items] == [None, 0.4, None, 0.05]
    assert items[1].score == 0.91
    assert exp.event.subject.user_id == "u1"
    assert exp.event.exposure_id == exp.id == exp.event.id


async def test_the_exposure_context_manager_works_with_async_with(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    async with client.exposure("search", session_id="sess", tenant_id="acme") as exp:
        await asyncio.sleep(0)
        exp.items = ["a", "b"]
    assert exp.event is not None
    assert exp.event.subject == sk.Subject(session_id="sess", tenant_id="acme")
    assert sk.current_exposure() is exp
    assert await client.aflush(2)
    assert memory.events == [exp.event]


def test_an_exposure_block_that_raises_records_nothing_and_the_exception_propagates(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    opened: list[sk.Exposure] = []

    def rank() -> None:
        with client.exposure("search") as exp:
            opened.append(exp)
            exp.items = ["a"]
            raise RuntimeError("ranker failed")

    with pytest.raises(RuntimeError, match="ranker failed"):
        rank()
    assert opened[0].event is None
    client.flush(2)
    assert memory.events == []


async def test_an_async_exposure_block_that_raises_records_nothing(client: sk.Client) -> None:
    with pytest.raises(ValueError, match="boom"):
        async with client.exposure("search") as exp:
            raise ValueError("boom")
    assert exp.event is None
    assert client.stats.recorded == 0


def test_the_token_is_available_inside_the_block(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        token = exp.token
        assert exp.event is None  # not recorded yet
    assert exp.event is not None
    assert client.verify(token).shown_at_ms == exp.shown_at_ms


@pytest.mark.parametrize("items", [[1.5], [None], [["nested"]], [True], "abc", 42])
def test_items_that_are_not_ids_or_items_are_rejected(client: sk.Client, items: Any) -> None:
    with client.exposure("s") as exp:
        exp.items = items
    assert exp.event is None
    assert client.stats.total_rejected == 1
    assert next(iter(client.stats.rejected_fields)).startswith("items")


def test_an_impression_list_longer_than_1000_items_is_too_large(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        exp.items = [str(i) for i in range(1001)]
    assert exp.event is None
    assert client.stats.rejected == {"too_large": 1}


# -- the module-level API and the default client --------------------------------------------------


@pytest.fixture
def default_client() -> Iterator[tuple[sk.Client, sk.MemoryExporter]]:
    memory = sk.MemoryExporter()
    client = sk.configure("module-level", exporters=[memory], secret=SECRET)
    yield client, memory
    sk.shutdown(timeout=2)


def test_configure_sets_the_default_client_behind_the_module_functions(
    default_client: tuple[sk.Client, sk.MemoryExporter],
) -> None:
    client, memory = default_client
    assert sk.get_client() is client

    @sk.recommendation("reply-draft", model="drafter")
    def draft() -> str:
        return "hi"

    assert draft() == "hi"
    exp = sk.current_exposure()
    assert exp is not None
    with sk.exposure("search") as exp2:
        exp2.items = ["a"]
    events = [
        sk.action(exp, "accepted"),
        sk.correction(exp.token, "hi", "hello"),
        sk.toggle(exp.id, "expanded"),
        sk.outcome(exp, "resolved", success=True),
        sk.feedback(exp, rating=1),
    ]
    assert all(e is not None for e in events)
    assert sk.verify(exp.token).exposure_id == exp.id
    assert sk.flush(2)
    kinds = [e.kind for e in memory.events]
    assert kinds == [
        "exposure",
        "exposure",
        "action",
        "correction",
        "toggle",
        "outcome",
        "feedback",
    ]
    assert {e.service for e in memory.events} == {"module-level"}
    assert sk.stats().recorded == 7


async def test_module_level_aflush(default_client: tuple[sk.Client, sk.MemoryExporter]) -> None:
    _, memory = default_client
    with sk.exposure("s"):
        pass
    assert await sk.aflush(2)
    assert len(memory.events) == 1


def test_the_module_level_decorator_follows_a_later_configure() -> None:
    @sk.recommendation("reply-draft")
    def draft() -> str:
        return "hi"

    first, second = sk.MemoryExporter(), sk.MemoryExporter()
    sk.configure("first", exporters=[first], secret=SECRET)
    draft()
    sk.configure("second", exporters=[second], secret=SECRET)  # flushes and shuts "first"
    draft()
    sk.shutdown(timeout=2)
    assert [e.service for e in first.events] == ["first"]
    assert [e.service for e in second.events] == ["second"]
    assert first.is_shutdown


def test_one_decorated_function_used_by_two_clients_in_turn_records_to_each() -> None:
    # the decorator remembers the last client it checked its arguments for: alternating
    # clients must still record each exposure to its own client, with the right model
    first, second = sk.MemoryExporter(), sk.MemoryExporter()
    clients = [
        sk.Client("first", exporters=[first], secret=SECRET),
        sk.Client("second", exporters=[second], secret=SECRET),
    ]
    current = [clients[0]]
    from signalkit._instrument import recommendation_decorator

    decorate = recommendation_decorator(
        lambda: current[0], "reply-draft", "drafter", "v2", None, None, None, {}
    )
    draft = decorate(lambda: "hi")
    for i in range(6):
        current[0] = clients[i % 2]
        assert draft() == "hi"
    for client in clients:
        client.shutdown(timeout=2)
    for exporter, service in ((first, "first"), (second, "second")):
        assert [e.service for e in exporter.events] == [service] * 3
        assert {(e.model.name, e.model.version) for e in exporter.events} == {("drafter", "v2")}


# -- the subject: who it was shown to ------------------------------------------------------------


def test_context_sets_the_subject_of_exposures_and_signals(client: sk.Client) -> None:
    with sk.context(user_id="u-7", tenant_id="acme"):
        with client.exposure("s") as exp:
            pass
        action = client.action(exp.token, "accepted")
    assert exp.event is not None
    assert action is not None
    assert exp.event.subject == sk.Subject(user_id="u-7", tenant_id="acme")
    assert action.subject == sk.Subject(user_id="u-7", tenant_id="acme")


def test_nested_contexts_inherit_what_they_do_not_set(client: sk.Client) -> None:
    with (
        sk.context(user_id="u-7", tenant_id="acme"),
        sk.context(session_id="s-1"),
        client.exposure("s") as exp,
    ):
        pass
    assert exp.event is not None
    assert exp.event.subject == sk.Subject(user_id="u-7", session_id="s-1", tenant_id="acme")


def test_a_signal_outside_any_context_inherits_the_subject_of_its_exposure(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.action(exposure, "accepted")
    assert event is not None
    assert event.subject.user_id == "user-1"


def test_an_explicit_user_id_overrides_the_context(client: sk.Client) -> None:
    with sk.context(user_id="from-context", session_id="s"):
        with client.exposure("s", user_id="explicit") as exp:
            pass
        action = client.action(exp, "accepted", user_id="signal-user")
    assert exp.event is not None
    assert action is not None
    assert exp.event.subject == sk.Subject(user_id="explicit", session_id="s")
    assert action.subject.user_id == "signal-user"


def test_the_context_ends_with_its_block(client: sk.Client) -> None:
    with sk.context(user_id="u-7"):
        pass
    with client.exposure("s") as exp:
        pass
    assert exp.event is not None
    assert exp.event.subject == sk.Subject()


# -- producer id and seq -------------------------------------------------------------------------


def test_events_carry_the_producer_id_and_seq_in_record_order(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    with client.exposure("s") as exp:
        pass
    recorded = [
        exp.event,
        client.action(exp, "accepted"),
        client.correction(exp, "a", "b"),
        client.toggle(exp, "expanded"),
        client.outcome(exp, "done"),
        client.feedback(exp, rating=1),
    ]
    assert [e.seq for e in recorded if e is not None] == [1, 2, 3, 4, 5, 6]
    assert {e.producer_id for e in recorded if e is not None} == {client.producer_id}
    client.flush(2)
    assert [e.seq for e in memory.events] == [1, 2, 3, 4, 5, 6]


def test_rejected_calls_leave_no_gap_in_seq(client: sk.Client, exposure: sk.Exposure) -> None:
    client.action(exposure, "")  # rejected
    event = client.action(exposure, "accepted")
    assert event is not None
    assert event.seq == 2


def test_each_client_is_its_own_producer(client: sk.Client) -> None:
    other = make_client(sk.MemoryExporter())
    try:
        assert other.producer_id != client.producer_id
        with other.exposure("s") as exp:
            pass
        assert exp.event is not None
        assert exp.event.seq == 1
    finally:
        other.shutdown(timeout=2)


def test_seq_is_unique_and_gapless_across_threads(
    client: sk.Client, exposure: sk.Exposure, memory: sk.MemoryExporter
) -> None:
    def record() -> None:
        for _ in range(200):
            client.action(exposure, "clicked")

    threads = [threading.Thread(target=record) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(5)
    seqs = sorted(e.seq for e in memory.events)
    assert seqs == list(range(1, 1 + 8 * 200 + 1))
    assert client.stats.recorded == 1601


# -- bad input: strict raises, non-strict counts -------------------------------------------------


def _exposure_event(client: sk.Client, surface: Any = "s", **kwargs: Any) -> sk.Event | None:
    with client.exposure(surface, **kwargs) as exp:
        pass
    return exp.event


BAD_CALLS: dict[str, tuple[Callable[[sk.Client, sk.Exposure], Any], str]] = {
    "empty action": (lambda c, e: c.action(e, ""), "action"),
    "action not a str": (lambda c, e: c.action(e, 5), "action"),
    "action too long": (lambda c, e: c.action(e, "a" * 201), "action"),
    "item_id not a str": (lambda c, e: c.action(e, "clicked", item_id=7), "item_id"),
    "user_id not a str": (lambda c, e: c.action(e, user_id=5), "user_id"),
    "original not a str": (lambda c, e: c.correction(e, None, "x"), "original"),
    "corrected not a str": (lambda c, e: c.correction(e, "x", b"y"), "corrected"),
    "unknown toggle state": (lambda c, e: c.toggle(e, "opened"), "state"),
    "empty element": (lambda c, e: c.toggle(e, "expanded", element=""), "element"),
    "negative dwell": (lambda c, e: c.toggle(e, "collapsed", dwell_ms=-1), "dwell_ms"),
    "empty outcome name": (lambda c, e: c.outcome(e, ""), "name"),
    "nan outcome value": (lambda c, e: c.outcome(e, "x", value=float("nan")), "value"),
    "value not a number": (lambda c, e: c.outcome(e, "x", value="10"), "value"),
    "success not a bool": (lambda c, e: c.outcome(e, "x", success="yes"), "success"),
    "empty feedback": (lambda c, e: c.feedback(e), "rating"),
    "rating off the scale": (lambda c, e: c.feedback(e, rating=2), "rating"),
    "rating is a bool": (lambda c, e: c.feedback(e, rating=True), "rating"),
    "scale upside down": (lambda c, e: c.feedback(e, rating=1, scale=(5, 1)), "scale"),
    "scale not a pair": (lambda c, e: c.feedback(e, rating=1, scale=(1, 2, 3)), "scale"),
    "empty comment": (lambda c, e: c.feedback(e, comment=""), "comment"),
    "empty choice": (lambda c, e: c.feedback(e, choice=""), "choice"),
    "empty surface": (lambda c, e: _exposure_event(c, ""), "surface"),
    "surface not a str": (lambda c, e: _exposure_event(c, 3), "surface"),
    "model not a str": (lambda c, e: _exposure_event(c, model=3), "model"),
    "exposure user_id not a str": (lambda c, e: _exposure_event(c, user_id=3), "user_id"),
    "exposure naive at": (lambda c, e: _exposure_event(c, at=datetime(2025, 1, 1)), "at"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_strict_mode_raises_invalid_event_naming_the_field(
    strict_client: sk.Client, case: str
) -> None:
    call, field = BAD_CALLS[case]
    with strict_client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidEvent) as info:
        call(strict_client, exp)
    assert info.value.field == field
    assert str(info.value).startswith(field)


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_non_strict_mode_returns_none_and_counts_the_rejection_by_field(
    client: sk.Client, case: str
) -> None:
    call, field = BAD_CALLS[case]
    with client.exposure("s") as exp:
        pass
    assert call(client, exp) is None
    assert client.stats.rejected_fields == {field: 1}
    assert client.stats.total_rejected == 1
    assert client.stats.recorded == 1  # only the exposure


def _forge(token: str) -> str:
    """The token with one character of its signed body changed."""
    return token[:30] + ("A" if token[30] != "A" else "B") + token[31:]


def test_strict_mode_raises_invalid_token_for_a_bad_token(strict_client: sk.Client) -> None:
    with strict_client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidToken) as info:
        strict_client.action(_forge(exp.token), "accepted")
    assert info.value.reason == "tampered"
    assert info.value.field == "token"


def test_non_strict_rejections_are_counted_by_reason(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        pass
    client.action(exp, "")
    client.action(exp, "")
    client.action(_forge(exp.token), "accepted")
    client.action("sk1.???", "accepted")
    client.correction(exp, "x" * 40_000, "y")
    client.action(exp.token, at=datetime(2200, 1, 1, tzinfo=UTC))
    stats = client.stats
    assert stats.rejected == {
        "invalid": 2,
        "token_tampered": 1,
        "token_malformed": 1,
        "too_large": 1,
        "token_expired": 1,
    }
    assert stats.rejected_fields == {"action": 2, "token": 3, "original": 1}
    assert stats.total_rejected == 6
    assert stats.recorded == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c, e: c.feedback(e, rating=10**400), "rating"),
        (lambda c, e: c.feedback(e, rating=1, scale=(0, 10**400)), "scale"),
        (lambda c, e: c.outcome(e, "x", value=10**400), "value"),
        (lambda c, e: c.toggle(e, "collapsed", dwell_ms=10**400), "dwell_ms"),
    ],
)
def test_a_number_too_large_for_a_float_is_rejected_naming_the_field(
    strict_client: sk.Client, call: Callable[[sk.Client, sk.Exposure], Any], field: str
) -> None:
    with strict_client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidEvent) as info:
        call(strict_client, exp)
    assert info.value.field == field


def test_a_text_over_max_text_chars_is_rejected_as_too_large(memory: sk.MemoryExporter) -> None:
    client = make_client(memory, max_text_chars=100)
    try:
        with client.exposure("s") as exp:
            pass
        assert client.correction(exp, "a" * 100, "b" * 100) is not None
        assert client.correction(exp, "a" * 101, "b") is None
        assert client.feedback(exp, comment="c" * 101) is None
        assert client.stats.rejected == {"too_large": 2}
        assert client.stats.rejected_fields == {"original": 1, "comment": 1}
    finally:
        client.shutdown(timeout=2)


# -- warnings: every rejection said, at a limited rate --------------------------------------------


def _signalkit_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "signalkit" and r.levelno == logging.WARNING]


def test_rejections_are_warned_about_at_most_once_per_reason_per_interval(
    memory: sk.MemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(memory, warn_interval_s=3600)
    try:
        with client.exposure("s") as exp:
            pass
        with caplog.at_level(logging.WARNING, logger="signalkit"):
            for _ in range(5):
                client.action(exp, "")
            for _ in range(3):
                client.action("sk1.???", "accepted")
            client.outcome(exp, "")  # same reason (invalid), other field: still held back
            client.flush(2)  # warnings are logged by the worker thread, or at the latest here
        warnings = _signalkit_warnings(caplog)
        assert len(warnings) == 2
        assert "action" in warnings[0].getMessage()
        assert "malformed" in warnings[1].getMessage()
        assert client.stats.total_rejected == 9  # every one counted all the same
    finally:
        client.shutdown(timeout=2)


def test_the_next_warning_after_the_interval_tells_how_many_were_held_back(
    memory: sk.MemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(memory, warn_interval_s=0.1)
    try:
        with client.exposure("s") as exp:
            pass
        with caplog.at_level(logging.WARNING, logger="signalkit"):
            for _ in range(4):
                client.action(exp, "")
            time.sleep(0.15)
            client.action(exp, "")
            client.flush(2)
        warnings = _signalkit_warnings(caplog)
        assert len(warnings) == 2
        assert "3 more" in warnings[1].getMessage()
    finally:
        client.shutdown(timeout=2)


def test_with_a_zero_interval_every_rejection_is_warned(
    memory: sk.MemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(memory, warn_interval_s=0)
    try:
        with client.exposure("s") as exp:
            pass
        with caplog.at_level(logging.WARNING, logger="signalkit"):
            for _ in range(4):
                client.action(exp, "")
            client.flush(2)
        assert len(_signalkit_warnings(caplog)) == 4
    finally:
        client.shutdown(timeout=2)


# -- shutdown ------------------------------------------------------------------------------------


def test_recording_after_shutdown_returns_none_and_is_counted(
    client: sk.Client, exposure: sk.Exposure, memory: sk.MemoryExporter
) -> None:
    assert client.shutdown(timeout=2)
    assert client.action(exposure, "accepted") is None
    assert client.outcome(exposure.token, "done") is None
    with client.exposure("s") as late:
        pass
    assert late.event is None
    assert client.stats.rejected == {"after_shutdown": 3}
    assert [e.kind for e in memory.events] == ["exposure"]
    assert memory.is_shutdown


def test_shutdown_delivers_what_was_queued(memory: sk.MemoryExporter) -> None:
    client = make_client(memory, flush_interval_s=60)
    with client.exposure("s") as exp:
        pass
    client.action(exp, "accepted")
    assert memory.events == []  # still batching
    assert client.shutdown(timeout=5)
    assert [e.kind for e in memory.events] == ["exposure", "action"]
    assert client.stats.pending == 0


def test_shutdown_is_idempotent(client: sk.Client) -> None:
    assert client.shutdown(timeout=2)
    assert client.shutdown(timeout=2)
    assert client.flush(1)


# -- delivery ------------------------------------------------------------------------------------


def test_flush_delivers_to_a_jsonl_file_that_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "signals" / "events.jsonl"
    client = make_client(sk.JsonlExporter(path), flush_interval_s=60)
    try:
        with client.exposure("search", model="ranker") as exp:
            exp.items = [sk.Item(id="a", propensity=0.5)]
        recorded = [
            exp.event,
            client.action(exp.token, "accepted"),
            client.correction(exp, "draft", "final"),
            client.toggle(exp, "expanded"),
            client.outcome(exp, "purchase", value=9.5),
            client.feedback(exp, rating=4, scale=(1, 5), comment="good"),
        ]
        assert client.flush(5)
        lines = path.read_bytes().splitlines()
        assert len(lines) == 6
        assert list(read_jsonl(lines)) == recorded
        with path.open("rb") as f:
            assert list(read_jsonl(f)) == recorded
    finally:
        client.shutdown(timeout=2)


def test_with_no_exporters_events_go_to_events_jsonl_under_signalkit_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALKIT_DIR", str(tmp_path / "store"))
    client = sk.Client("svc", secret=SECRET)
    try:
        with client.exposure("s") as exp:
            pass
        assert client.flush(5)
    finally:
        client.shutdown(timeout=2)
    lines = (tmp_path / "store" / "events.jsonl").read_bytes().splitlines()
    assert [e.id for e in read_jsonl(lines)] == [exp.id]


def test_the_service_name_comes_from_signalkit_service(
    monkeypatch: pytest.MonkeyPatch, memory: sk.MemoryExporter
) -> None:
    monkeypatch.setenv("SIGNALKIT_SERVICE", "from-env")
    client = sk.Client(exporters=[memory], secret=SECRET)
    try:
        with client.exposure("s") as exp:
            pass
        assert exp.event is not None
        assert exp.event.service == "from-env"
    finally:
        client.shutdown(timeout=2)


def test_no_worker_thread_is_started_before_the_first_event(memory: sk.MemoryExporter) -> None:
    before = set(worker_threads())
    client = make_client(memory)
    try:
        assert set(worker_threads()) == before
        with client.exposure("s"):
            pass
        assert len(set(worker_threads()) - before) == 1
    finally:
        assert client.shutdown(timeout=2)
    assert set(worker_threads()) <= before


def test_flush_returns_within_its_timeout_when_an_exporter_hangs(
    blocking_exporter: Any,
) -> None:
    client = make_client(blocking_exporter)
    try:
        with client.exposure("s"):
            pass
        started = time.monotonic()
        assert client.flush(timeout=0.3) is False
        assert time.monotonic() - started < 0.3 + 0.2
        assert client.stats.pending == 1
        blocking_exporter.release.set()
        assert client.flush(timeout=5)
        assert client.stats.pending == 0
    finally:
        blocking_exporter.release.set()
        client.shutdown(timeout=2)


async def test_aflush_returns_within_its_timeout_without_blocking_the_loop(
    blocking_exporter: Any,
) -> None:
    client = make_client(blocking_exporter)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    try:
        with client.exposure("s"):
            pass
        started = time.monotonic()
        assert await client.aflush(timeout=0.3) is False
        assert time.monotonic() - started < 0.3 + 0.2
        assert ticks >= 10  # the loop kept running while flush waited
    finally:
        beat.cancel()
        blocking_exporter.release.set()
        client.shutdown(timeout=2)


def test_shutdown_returns_within_its_timeout_and_counts_what_it_left(
    blocking_exporter: Any,
) -> None:
    client = make_client(blocking_exporter, batch_size=1)
    with client.exposure("s") as exp:
        pass
    assert blocking_exporter.entered.wait(5)
    client.action(exp, "accepted")
    client.action(exp, "clicked")
    started = time.monotonic()
    assert client.shutdown(timeout=0.2) is False
    assert time.monotonic() - started < 0.2 + 0.1
    # the two queued actions will never be exported; the exposure the hung exporter holds is
    # still pending, and is counted when the exporter returns
    assert client.stats.dropped == {"shutdown": 2}
    assert client.stats.pending == 1
    blocking_exporter.release.set()


def test_an_event_counted_as_dropped_at_shutdown_is_never_also_counted_delivered(
    blocking_exporter: Any,
) -> None:
    client = make_client(blocking_exporter, batch_size=1)
    with client.exposure("s") as exp:
        pass
    assert blocking_exporter.entered.wait(5)
    client.action(exp, "accepted")
    client.shutdown(timeout=0.1)
    blocking_exporter.release.set()
    deadline = time.monotonic() + 2
    while client.stats.exported == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = client.stats
    assert stats.pending >= 0
    delivered = stats.delivered.get("BlockingExporter", 0)
    assert delivered + stats.total_dropped + stats.pending == stats.recorded


def test_an_event_larger_than_the_queue_byte_budget_is_too_large(
    memory: sk.MemoryExporter,
) -> None:
    client = make_client(memory, max_queue_bytes=2_000)
    try:
        with client.exposure("s") as exp:
            pass
        assert client.flush(5)  # the queue is empty
        event = client.correction(exp, "a" * 3_000, "b" * 3_000)
        stats = client.stats
        assert "queue_full" not in stats.dropped
        if event is None:
            assert stats.rejected == {"too_large": 1}
        else:
            assert stats.dropped == {"too_large": 1}
    finally:
        client.shutdown(timeout=2)


def test_a_full_queue_drops_new_events_and_counts_them(
    blocking_exporter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(blocking_exporter, max_queue=3, batch_size=1)
    try:
        with client.exposure("s") as exp:
            pass
        assert blocking_exporter.entered.wait(5)  # the worker holds the exposure
        with caplog.at_level(logging.WARNING, logger="signalkit"):
            accepted = [client.action(exp, "clicked", attributes={"n": i}) for i in range(5)]
            client.flush(0)  # logs the waiting warnings even while the exporter hangs
        assert all(e is not None for e in accepted)  # accepted, and the drop is counted
        stats = client.stats
        assert stats.dropped == {"queue_full": 2}
        assert stats.recorded == 6
        assert "queue_full" in caplog.text
        blocking_exporter.release.set()
        assert client.flush(5)
        delivered = blocking_exporter.events
        assert [e.seq for e in delivered] == [1, 2, 3, 4]  # the gap (5, 6) shows the loss
        stats = client.stats
        assert stats.delivered == {"BlockingExporter": 4}
        assert stats.delivered["BlockingExporter"] + stats.total_dropped + stats.pending == 6
    finally:
        blocking_exporter.release.set()
        client.shutdown(timeout=2)


def test_a_full_queue_with_drop_oldest_keeps_the_newest_events(blocking_exporter: Any) -> None:
    client = make_client(blocking_exporter, max_queue=2, batch_size=1, on_queue_full="drop_oldest")
    try:
        with client.exposure("s") as exp:
            pass
        assert blocking_exporter.entered.wait(5)
        for _ in range(4):
            client.action(exp, "clicked")
        assert client.stats.dropped == {"queue_full": 2}
        blocking_exporter.release.set()
        assert client.flush(5)
        assert [e.seq for e in blocking_exporter.events] == [1, 4, 5]
    finally:
        blocking_exporter.release.set()
        client.shutdown(timeout=2)


def test_the_queue_is_bounded_in_bytes_too(blocking_exporter: Any) -> None:
    client = make_client(blocking_exporter, max_queue_bytes=20_000, batch_size=1)
    try:
        with client.exposure("s") as exp:
            pass
        assert blocking_exporter.entered.wait(5)
        for _ in range(5):
            client.correction(exp, "x" * 5_000, "y" * 5_000)
        assert client.stats.dropped.get("queue_full", 0) >= 3
    finally:
        blocking_exporter.release.set()
        client.shutdown(timeout=2)


def test_an_exporter_that_raises_does_not_break_recording_or_other_exporters(
    raising_exporter: Any, memory: sk.MemoryExporter
) -> None:
    client = make_client(raising_exporter, memory)
    try:
        with client.exposure("s") as exp:
            pass
        event = client.action(exp, "accepted")
        assert event is not None
        assert client.flush(5)
        assert [e.kind for e in memory.events] == ["exposure", "action"]
        assert raising_exporter.calls == 3  # its retry policy: three attempts
        assert client.stats.failed == 3
        assert client.stats.dropped == {"retries_exhausted": 2}
        assert client.stats.exporters["RaisingExporter"].dropped == {"retries_exhausted": 2}
        assert client.stats.exporters["MemoryExporter"].delivered == 2
        later = client.action(exp, "clicked")  # the worker survived
        assert later is not None
        assert client.flush(5)
        assert memory.events[-1] == later
    finally:
        client.shutdown(timeout=2)


class FlakyExporter:
    """Fails its first export, then delivers."""

    def __init__(self) -> None:
        self.attempts = 0
        self.batches: list[list[sk.Event]] = []

    def export(self, batch: Sequence[sk.Event]) -> sk.ExportResult:
        self.attempts += 1
        if self.attempts == 1:
            return sk.ExportResult.RETRY
        self.batches.append(list(batch))
        return sk.ExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def test_a_batch_that_failed_once_is_retried_with_the_same_events() -> None:
    flaky = FlakyExporter()
    client = make_client(flaky)
    try:
        with client.exposure("s") as exp:
            pass
        client.action(exp, "accepted")
        assert client.flush(5)
        assert flaky.attempts == 2
        assert [e.kind for e in flaky.batches[0]] == ["exposure", "action"]
        assert client.stats.retried == 1
        assert client.stats.delivered == {"FlakyExporter": 2}
        assert client.stats.dropped == {}
    finally:
        client.shutdown(timeout=2)


def test_an_exporter_without_export_is_a_config_error() -> None:
    with pytest.raises(sk.ConfigError, match=r"exporters\[0\]"):
        sk.Client("svc", exporters=[object()], secret=SECRET)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_queue", 0),
        ("batch_size", -1),
        ("max_text_chars", "many"),
        ("on_queue_full", "block"),
        ("flush_interval_s", 0),
        ("spool", 42),
    ],
)
def test_a_bad_option_is_a_config_error_naming_it(option: str, value: Any) -> None:
    with pytest.raises(sk.ConfigError, match=option):
        sk.Client("svc", exporters=[sk.MemoryExporter()], secret=SECRET, **{option: value})


def test_stats_account_for_every_accepted_event(
    client: sk.Client, exposure: sk.Exposure, memory: sk.MemoryExporter
) -> None:
    for _ in range(10):
        client.action(exposure, "clicked")
    client.action(exposure, "")
    assert client.flush(5)
    stats = client.stats
    assert stats.recorded == 11
    assert stats.delivered == {"MemoryExporter": 11}
    assert stats.exported == 11
    assert stats.pending == 0
    assert stats.total_dropped == 0
    assert stats.total_rejected == 1


def test_an_unencodable_string_never_poisons_a_batch(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    client = make_client(sk.JsonlExporter(path), flush_interval_s=60)
    try:
        with client.exposure("s") as exp:
            pass
        bad = client.action(exp, "accepted", attributes={"k": "\ud800"})
        good = client.action(exp, "clicked")
        assert good is not None
        assert client.flush(5)
        lines = path.read_bytes().splitlines() if path.exists() else []
        ids = [e.id for e in read_jsonl(lines)]
        assert exp.id in ids
        assert good.id in ids
        assert bad is None or bad.id in ids or client.stats.total_dropped == 1
    finally:
        client.shutdown(timeout=2)


# -- processors ----------------------------------------------------------------------------------


def test_a_processor_that_returns_none_drops_the_event_as_filtered(
    memory: sk.MemoryExporter,
) -> None:
    def drop_clicks(event: sk.Event) -> sk.Event | None:
        return None if getattr(event, "action", None) == "clicked" else event

    client = make_client(memory, processors=[drop_clicks])
    try:
        with client.exposure("s") as exp:
            pass
        assert client.action(exp, "clicked") is None
        kept = client.action(exp, "accepted")
        assert kept is not None
        assert kept.seq == 2
        assert client.flush(5)
        assert [e.kind for e in memory.events] == ["exposure", "action"]
        stats = client.stats
        assert stats.filtered == 1
        assert stats.total_rejected == 0
        assert stats.total_dropped == 0
    finally:
        client.shutdown(timeout=2)


def test_a_redacting_processor_changes_what_is_returned_and_delivered(
    memory: sk.MemoryExporter,
) -> None:
    def redact(event: sk.Event) -> sk.Event:
        if isinstance(event, sk.CorrectionEvent):
            return event.model_copy(update={"original": "[redacted]", "corrected": "[redacted]"})
        return event

    client = make_client(memory, processors=[redact])
    try:
        with client.exposure("s") as exp:
            pass
        event = client.correction(exp, "my card is 4111", "my card is 4242")
        assert event is not None
        assert event.original == event.corrected == "[redacted]"
        assert event.edit_distance == 3  # derived measures survive redaction
        assert client.flush(5)
        delivered = memory.events[-1]
        assert isinstance(delivered, sk.CorrectionEvent)
        assert "4111" not in delivered.to_json().decode()
        assert delivered.seq == 2
    finally:
        client.shutdown(timeout=2)


def test_processors_run_in_order_on_scored_events(memory: sk.MemoryExporter) -> None:
    seen: list[tuple[str, float | None]] = []

    def first(event: sk.Event) -> sk.Event:
        seen.append(("first", event.score.strength if event.score else None))
        return event.model_copy(update={"attributes": {**event.attributes, "step": 1}})

    def second(event: sk.Event) -> sk.Event:
        seen.append(("second", float(event.attributes["step"])))
        return event

    client = make_client(memory, processors=[first, second])
    try:
        with client.exposure("s"):
            pass
        assert seen == [("first", 0.0), ("second", 1.0)]
    finally:
        client.shutdown(timeout=2)


def test_a_processor_that_raises_drops_the_event_and_never_leaks_it(
    memory: sk.MemoryExporter,
) -> None:
    def broken_redaction(event: sk.Event) -> sk.Event:
        raise RuntimeError("redaction failed")

    client = make_client(memory, processors=[broken_redaction])
    try:
        with client.exposure("s") as exp:
            pass
        assert exp.event is None
        assert client.correction(exp, "secret text", "other secret") is None
        assert client.flush(5)
        assert memory.events == []
        assert client.stats.recorded == 0
    finally:
        client.shutdown(timeout=2)


def test_a_processor_that_is_not_callable_is_a_config_error() -> None:
    with pytest.raises(sk.ConfigError, match=r"processors\[1\]"):
        make_client(sk.MemoryExporter(), processors=[lambda e: e, "redact"])


# -- ids of recorded events ----------------------------------------------------------------------


def test_recorded_events_have_uuid7_ids_in_record_order(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    events = [client.action(exposure, "clicked") for _ in range(50)]
    ids = [e.id for e in events if e is not None]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


@pytest.mark.parametrize("bad", [[], {"v": 1}, 7])
def test_a_decorator_given_an_unhashable_or_wrong_model_still_returns_the_result(
    client: sk.Client, bad: object
) -> None:
    @client.recommendation("s", model=bad)  # type: ignore[arg-type]
    def answer() -> str:
        return "result"

    assert answer() == "result"
    assert client.stats.rejected_fields == {"model": 1}
    strict = sk.Client("t", exporters=[sk.MemoryExporter()], strict=True)
    strict_answer = strict.recommendation("s", model=bad)(answer)  # type: ignore[arg-type]
    with pytest.raises(sk.InvalidEvent, match="model"):
        strict_answer()
