"""Events: frozen typed values, a discriminated union on ``kind``, UUIDv7 ids, a JSON Schema."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

import signalkit as sk
from signalkit._ids import id_time_ms, new_id
from signalkit.events import event_json_schema, parse_event, read_jsonl

KINDS = {"exposure", "action", "correction", "toggle", "outcome", "feedback"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at_ms(ms: float) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


# -- one recorder per kind and variant: every event the client can build -----------------------

Recorder = Callable[[sk.Client, sk.Exposure], sk.Event | None]

RECORDERS: dict[str, Recorder] = {
    "exposure": lambda c, exp: exp.event,
    "exposure_with_items": lambda c, exp: _exposure_with_items(c),
    "action": lambda c, exp: c.action(exp, "accepted"),
    "action_on_item_with_attributes": lambda c, exp: c.action(
        exp, "clicked", item_id="doc-2", attributes={"s": "x", "n": 3, "f": 0.25, "b": True}
    ),
    "action_from_token_backfilled": lambda c, exp: c.action(
        exp.token, "copied", at=at_ms(exp.shown_at_ms + 1234)
    ),
    "action_from_unknown_bare_id": lambda c, exp: c.action(new_id(), "dismissed"),
    "correction": lambda c, exp: c.correction(exp, "Hello wrold", "Hello world"),
    "correction_from_empty": lambda c, exp: c.correction(exp, "", "written from scratch"),
    "toggle_expanded": lambda c, exp: c.toggle(exp, "expanded", element="why"),
    "toggle_collapsed_with_dwell": lambda c, exp: c.toggle(exp, "collapsed", dwell_ms=1500),
    "outcome": lambda c, exp: c.outcome(exp, "ticket_resolved", value=1, success=True),
    "outcome_success_unknown": lambda c, exp: c.outcome(exp.id, "purchase", value=19.99),
    "feedback_thumbs": lambda c, exp: c.feedback(exp, rating=-1, comment="wrong tone"),
    "feedback_stars": lambda c, exp: c.feedback(exp, rating=4, scale=(1, 5)),
    "feedback_choice": lambda c, exp: c.feedback(exp.token, choice="option-b"),
}


def _exposure_with_items(c: sk.Client) -> sk.ExposureEvent | None:
    with c.exposure(
        "search",
        model="ranker",
        model_version="v7",
        model_variant="b",
        attributes={"query_len": 12},
        session_id="sess-1",
        tenant_id="acme",
    ) as exp:
        exp.items = ["a", 42, sk.Item(id="c", propensity=0.25, score=0.9)]
    return exp.event


@pytest.fixture(params=sorted(RECORDERS))
def recorded(request: pytest.FixtureRequest, client: sk.Client, exposure: sk.Exposure) -> sk.Event:
    event = RECORDERS[request.param](client, exposure)
    assert event is not None, f"{request.param} was rejected: {client.stats.rejected}"
    return event


# -- frozen values ------------------------------------------------------------------------------


def test_events_are_frozen(recorded: sk.Event) -> None:
    with pytest.raises(ValidationError, match="frozen"):
        recorded.service = "changed"  # type: ignore[misc]
    assert recorded.service == "test-service"


def test_scores_subjects_and_model_refs_are_frozen(recorded: sk.Event) -> None:
    assert recorded.score is not None
    for value, field in ((recorded.score, "strength"), (recorded.subject, "user_id")):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(value, field, 1)
    with pytest.raises(ValidationError, match="frozen"):
        recorded.model.name = "other"  # type: ignore[misc]


def test_events_reject_unknown_fields() -> None:
    data = orjson.loads(_an_action().to_json())
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        parse_event(data)


def _an_action() -> sk.ActionEvent:
    return sk.ActionEvent(
        id=new_id(),
        ts=datetime.now(UTC),
        service="svc",
        exposure_id=new_id(),
        producer_id="p",
        seq=1,
        action="accepted",
    )


# -- the discriminated union --------------------------------------------------------------------


def test_parse_event_picks_the_class_from_kind(recorded: sk.Event) -> None:
    parsed = parse_event(recorded.to_json())
    assert type(parsed) is type(recorded)
    assert parsed.kind in KINDS


def test_to_json_then_parse_event_round_trips(recorded: sk.Event) -> None:
    assert parse_event(recorded.to_json()) == recorded
    assert parse_event(recorded.to_json().decode()) == recorded
    assert parse_event(orjson.loads(recorded.to_json())) == recorded


def test_parse_event_rejects_an_unknown_kind() -> None:
    data = orjson.loads(_an_action().to_json())
    data["kind"] = "click"
    with pytest.raises(ValidationError):
        parse_event(data)


def test_to_json_is_compact_json_with_every_field(recorded: sk.Event) -> None:
    raw = recorded.to_json()
    assert b"\n" not in raw
    assert set(orjson.loads(raw)) == set(type(recorded).model_fields)


def test_timestamps_are_utc_in_json(recorded: sk.Event) -> None:
    assert recorded.ts.utcoffset() == timedelta(0)
    assert orjson.loads(recorded.to_json())["ts"].endswith("Z")


def test_read_jsonl_parses_lines_and_skips_blank_ones(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        pass
    act = client.action(exp, "accepted")
    assert exp.event is not None
    assert act is not None
    lines = [exp.event.to_json(), b"", b"   ", act.to_json().decode()]
    assert list(read_jsonl(lines)) == [exp.event, act]


def test_read_jsonl_names_the_line_number_of_a_bad_line() -> None:
    lines = [_an_action().to_json(), b"{not json"]
    with pytest.raises(ValueError, match="line 2"):
        list(read_jsonl(lines))


# -- the fast constructor builds what pydantic would validate ------------------------------------


def test_an_event_built_by_the_client_equals_the_same_event_validated_by_pydantic(
    recorded: sk.Event,
) -> None:
    validated = type(recorded).model_validate(recorded.model_dump())
    assert validated == recorded
    assert validated.model_dump() == recorded.model_dump()
    assert parse_event(recorded.to_json()) == recorded


def test_an_event_built_by_the_client_has_the_field_types_pydantic_would_give(
    recorded: sk.Event,
) -> None:
    # validating the built event's own values (not a dump) catches a wrong type that a
    # lax dump/validate round trip would coerce away
    fields = type(recorded).model_fields
    validated = type(recorded).model_validate({name: getattr(recorded, name) for name in fields})
    for name in fields:
        assert type(getattr(validated, name)) is type(getattr(recorded, name)), name


def test_every_kind_is_covered_by_the_client_recorders() -> None:
    assert {name.split("_")[0] for name in RECORDERS} == KINDS


# -- ids: UUIDv7 ---------------------------------------------------------------------------------


def test_new_id_is_a_uuid_version_7_with_the_rfc_variant() -> None:
    for _ in range(200):
        u = uuid.UUID(new_id())
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert str(u) == str(u).lower()


def test_new_id_carries_the_current_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= id_time_ms(value) <= after + 1  # +1: the counter may borrow a millisecond


def test_new_ids_are_strictly_increasing_within_one_process() -> None:
    ids = [new_id() for _ in range(20_000)]  # many share a millisecond
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(ids)) == len(ids)


def test_new_ids_are_unique_and_ordered_per_thread_across_threads() -> None:
    results: list[list[str]] = [[] for _ in range(8)]

    def make(out: list[str]) -> None:
        out.extend(new_id() for _ in range(2_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for out in results for i in out]
    assert len(set(every)) == len(every)
    for out in results:
        assert out == sorted(out)


def test_ids_keep_increasing_when_the_counter_runs_out_or_the_clock_steps_back_a_little(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from signalkit import _ids

    monkeypatch.setattr(_ids, "_now", _ids._now)  # put the process's clock state back after
    ms = time.time_ns() // 1_000_000 + 60_000  # ahead of now: only this test's calls move it
    stamps = [_ids.stamp(ms) for _ in range(5_000)]  # more than the 12-bit counter holds
    stamps += [_ids.stamp(ms - 5_000) for _ in range(10)]  # the clock stepped back 5 s
    ids = [s[1] for s in stamps]
    assert all(a < b for a, b in itertools.pairwise(ids))
    for when, value, ts in stamps:  # the event time, the id and the datetime agree
        assert id_time_ms(value) == when == round(ts.timestamp() * 1000)
        assert ts.tzinfo is UTC
    times = {s[0] for s in stamps}
    assert min(times) == ms  # the first ids carry the time given
    assert max(times) in (ms + 1, ms + 2)  # ran out: borrowed the next millisecond, no repeat
    assert all(uuid.UUID(i).version == 7 for i in ids)


def test_after_a_big_step_back_of_the_clock_ids_and_times_follow_the_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from signalkit import _ids

    monkeypatch.setattr(_ids, "_now", _ids._now)
    ms = time.time_ns() // 1_000_000 + 60_000
    _ids.stamp(ms)
    when, value, ts = _ids.stamp(ms - 60_000)  # an hour-long NTP step would be the same
    assert when == ms - 60_000 == id_time_ms(value)
    assert round(ts.timestamp() * 1000) == when


def test_a_backfill_id_carries_the_given_time() -> None:
    when = datetime(2024, 5, 17, 12, 30, 1, 250_000, tzinfo=UTC)
    ns = int(when.timestamp()) * 1_000_000_000 + 250_000_000
    value = new_id(ns)
    assert uuid.UUID(value).version == 7
    assert id_time_ms(value) == ns // 1_000_000


def test_a_recorded_events_id_is_time_ordered_with_its_timestamp(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.action(exposure, "accepted")
    assert event is not None
    assert abs(id_time_ms(event.id) - event.ts.timestamp() * 1000) <= 2
    assert event.id > exposure.id


def test_a_backfilled_events_id_carries_the_backfill_time(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    when = at_ms(exposure.shown_at_ms + 90_000)
    event = client.outcome(exposure, "purchase", at=when)
    assert event is not None
    assert event.ts == when
    assert id_time_ms(event.id) == exposure.shown_at_ms + 90_000
    assert uuid.UUID(event.id).version == 7


def test_a_signal_backfilled_before_1970_never_gets_a_malformed_id(client: sk.Client) -> None:
    event = client.action(new_id(), "accepted", at=datetime(1960, 1, 1, tzinfo=UTC))
    assert event is None or uuid.UUID(event.id).version == 7


# -- the published JSON Schema -------------------------------------------------------------------


def test_event_json_schema_is_a_draft_2020_12_schema_with_an_id() -> None:
    schema = event_json_schema()
    orjson.dumps(schema)  # plain JSON data
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("event-v1.json")
    assert schema["title"]


def test_event_json_schema_is_a_one_of_with_a_discriminator_covering_all_six_kinds() -> None:
    schema = event_json_schema()
    refs = [option["$ref"] for option in schema["oneOf"]]
    assert len(refs) == 6
    assert schema["discriminator"]["propertyName"] == "kind"
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == KINDS
    assert sorted(mapping.values()) == sorted(refs)
    for kind, ref in mapping.items():
        definition = _resolve(schema, ref)
        kind_schema = definition["properties"]["kind"]
        assert kind_schema.get("const", (kind_schema.get("enum") or [None])[0]) == kind
        assert "kind" in definition.get("required", []) or kind_schema.get("default") == kind


def test_every_ref_in_the_event_json_schema_resolves() -> None:
    schema = event_json_schema()
    for ref in _refs(schema):
        _resolve(schema, ref)


def test_events_the_client_records_validate_against_the_published_schema(
    recorded: sk.Event,
) -> None:
    schema = event_json_schema()
    instance = orjson.loads(recorded.to_json())
    ref = schema["discriminator"]["mapping"][instance["kind"]]
    _validate(schema, _resolve(schema, ref), instance, "$")


def test_the_schema_validator_used_here_rejects_what_the_schema_forbids() -> None:
    schema = event_json_schema()
    instance = orjson.loads(_an_action().to_json())
    definition = _resolve(schema, schema["discriminator"]["mapping"]["action"])
    for broken in (
        {**instance, "extra": 1},
        {**instance, "seq": "one"},
        {k: v for k, v in instance.items() if k != "id"},
        {**instance, "attributes": {"nested": {"a": 1}}},
    ):
        with pytest.raises(AssertionError):
            _validate(schema, definition, broken, "$")


# A small validator for the keywords pydantic emits; an unknown keyword fails loudly so this
# never passes by ignoring part of the schema.
_ANNOTATIONS = {"title", "description", "default", "format", "examples", "discriminator"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _validate(root: dict[str, Any], node: dict[str, Any], value: Any, path: str) -> None:
    if "type" in node:  # first: the other keywords assume the type
        assert _TYPES[node["type"]](value), f"{path}: {value!r} is not {node['type']}"
    for key, rule in node.items():
        if key in _ANNOTATIONS or key == "type":
            continue
        if key == "$ref":
            _validate(root, _resolve(root, rule), value, path)
        elif key == "anyOf":
            errors = []
            for option in rule:
                try:
                    _validate(root, option, value, path)
                    break
                except AssertionError as exc:
                    errors.append(str(exc))
            else:
                raise AssertionError(f"{path}: matches no option: {errors}")
        elif key == "const":
            assert value == rule, f"{path}: {value!r} != {rule!r}"
        elif key == "enum":
            assert value in rule, f"{path}: {value!r} not in {rule!r}"
        elif key == "properties":
            for name, sub in rule.items():
                if name in value:
                    _validate(root, sub, value[name], f"{path}.{name}")
        elif key == "required":
            missing = set(rule) - set(value)
            assert not missing, f"{path}: missing {missing}"
        elif key == "additionalProperties":
            extra = set(value) - set(node.get("properties", {}))
            if rule is False:
                assert not extra, f"{path}: unexpected {extra}"
            elif isinstance(rule, dict):
                for name in extra:
                    _validate(root, rule, value[name], f"{path}.{name}")
        elif key == "items":
            for i, item in enumerate(value[len(node.get("prefixItems", [])) :]):
                _validate(root, rule, item, f"{path}[{i}]")
        elif key == "prefixItems":
            for i, (sub, item) in enumerate(zip(rule, value, strict=False)):
                _validate(root, sub, item, f"{path}[{i}]")
        elif key == "maxItems":
            assert len(value) <= rule, path
        elif key == "minItems":
            assert len(value) >= rule, path
        elif key == "minimum":
            assert value >= rule, path
        elif key == "maximum":
            assert value <= rule, path
        elif key == "exclusiveMinimum":
            assert value > rule, path
        elif key == "exclusiveMaximum":
            assert value < rule, path
        else:
            raise NotImplementedError(f"schema keyword {key!r} at {path}")


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/$defs/"), ref
    return root["$defs"][ref.removeprefix("#/$defs/")]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
