"""signalkit-langfuse against a Langfuse stand-in on 127.0.0.1 (langfuse_server.py) that checks
requests as Langfuse does: the ingestion request, every signal kind, the trace rule, 207
accounting, retries without duplicates, limits, and the same scores sent by the Langfuse SDK."""

from __future__ import annotations

import base64
import importlib
import inspect
import os
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import signalkit_langfuse
from langfuse_server import LangfuseServer
from signalkit_langfuse import (
    INSTALL_HINT,
    TRUNCATED,
    LangfuseClientExporter,
    LangfuseExporter,
    SdkNotInstalled,
    fallback_trace_id,
    langfuse_scores,
    score_target,
)

import signalkit as sk
from signalkit import ConfigError, ExportFailure, ExportResult, RetryPolicy

PUBLIC = "pk-lf-1234567890abcdef"
SECRET_KEY = "sk-lf-secret-0987654321fedcba"
SECRET = "s" * 32
FAST = RetryPolicy(base_s=0.01, cap_s=0.02, max_attempts=6)
T0 = datetime(2026, 11, 6, 8, 49, 37, 123000, tzinfo=UTC)
OTEL_TRACE = "0af7651916cd43dd8448eb211c80319c"
OTEL_SPAN = "b7ad6b7169203331"
SCORE = sk.Score(
    strength=0.8,
    polarity=-0.5,
    reasons=(sk.Reason(factor="base", effect=0.7),),
    policy="default@1",
)


def event_id(n: int) -> str:
    return str(uuid.UUID(int=(0x019A << 112) | (7 << 76) | n))


EXPOSURE_ID = event_id(0)


def common(n: int, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": event_id(n),
        "ts": T0 + timedelta(milliseconds=n),
        "service": "langfuse-tests",
        "exposure_id": EXPOSURE_ID,
        "producer_id": "19e760ca49c216dc",
        "seq": n + 1,
        "subject": sk.Subject(user_id="user-7", session_id="sess-7"),
        "model": sk.ModelRef(name="drafter", version="2026-11-01"),
        "trace_id": OTEL_TRACE,
        "span_id": OTEL_SPAN,
        "attributes": {"plan": "pro"},
        "score": SCORE,
    }
    fields.update(overrides)
    return fields


def every_kind() -> dict[str, sk.Event]:
    return {
        "exposure": sk.ExposureEvent(**common(0), surface="reply-draft", latency_ms=412.5),
        "action": sk.ActionEvent(**common(1), action="accepted", time_to_action_ms=850.0),
        "correction": sk.CorrectionEvent(
            **common(2),
            original="Dear Sir, ✓",
            corrected="Hi Sam",
            edit_distance=9,
            similarity=0.4,
            time_to_action_ms=12_000.0,
        ),
        "toggle": sk.ToggleEvent(**common(3), state="collapsed", element="why", dwell_ms=3400.0),
        "outcome": sk.OutcomeEvent(**common(4), name="resolved", value=1.0, success=True),
        "feedback": sk.FeedbackEvent(
            **common(5), rating=4.0, scale=(1.0, 5.0), choice="b", comment="better tone — ü"
        ),
    }


# name, value, dataType of each score, by kind (the signed strength is 0.8 * -0.5)
EXPECTED: dict[str, list[tuple[str, Any, str]]] = {
    "exposure": [],
    "action": [("signalkit.action", -0.4, "NUMERIC")],
    "correction": [
        ("signalkit.correction", -0.4, "NUMERIC"),
        ("signalkit.correction.similarity", 0.4, "NUMERIC"),
    ],
    "toggle": [("signalkit.toggle", -0.4, "NUMERIC")],
    "outcome": [
        ("signalkit.outcome", -0.4, "NUMERIC"),
        ("signalkit.outcome.success", 1.0, "BOOLEAN"),
    ],
    "feedback": [
        ("signalkit.feedback", -0.4, "NUMERIC"),
        ("signalkit.feedback.choice", "b", "CATEGORICAL"),
    ],
}


@pytest.fixture
def server() -> Iterator[LangfuseServer]:
    with LangfuseServer(PUBLIC, SECRET_KEY) as running:
        yield running


def exporter_for(server: LangfuseServer, **options: Any) -> LangfuseExporter:
    options.setdefault("retry_policy", FAST)
    return LangfuseExporter(PUBLIC, SECRET_KEY, host=server.base_url, **options)


def run_client(exporter: sk.Exporter) -> sk.Client:
    return sk.Client("langfuse-tests", exporters=[exporter], secret=SECRET)


def signals(n: int, start: int = 1, **overrides: Any) -> list[sk.Event]:
    return [
        sk.ActionEvent(**common(i, **overrides), action="accepted") for i in range(start, start + n)
    ]


# -- the mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_each_signal_kind_becomes_its_scores(kind: str) -> None:
    event = every_kind()[kind]
    scores = langfuse_scores(event)
    assert [(s["name"], s["value"], s["dataType"]) for s in scores] == EXPECTED[kind]
    for score in scores:
        assert score["id"].startswith(event.id)
        assert score["traceId"] == OTEL_TRACE
        assert score["observationId"] == OTEL_SPAN
        assert score["metadata"]["signalkit_event_id"] == event.id
        assert score["metadata"]["signalkit_exposure_id"] == EXPOSURE_ID
        assert score["metadata"]["signalkit_kind"] == kind
    if scores:
        assert scores[0]["id"] == event.id  # the main score's id is the event id
        assert scores[0]["metadata"]["signalkit_policy"] == "default@1"
        assert scores[0]["metadata"]["plan"] == "pro"
    assert len({s["id"] for s in scores}) == len(scores)


def test_comments_say_what_happened_and_feedback_keeps_the_users_words() -> None:
    events = every_kind()
    signals_only = {k: e for k, e in events.items() if k != "exposure"}
    comments = {k: langfuse_scores(e)[0].get("comment") for k, e in signals_only.items()}
    assert comments == {
        "action": "action: accepted",
        "correction": "correction: edit distance 9, similarity 0.40",
        "toggle": "toggle: collapsed",
        "outcome": "outcome: resolved",
        "feedback": "better tone — ü",
    }


def test_an_unscored_signal_sends_only_its_measures() -> None:
    event = every_kind()["correction"].model_copy(update={"score": None})
    assert [s["name"] for s in langfuse_scores(event)] == ["signalkit.correction.similarity"]
    action = every_kind()["action"].model_copy(update={"score": None})
    assert langfuse_scores(action) == []


def test_the_fallback_trace_id_is_the_sdks_create_trace_id_of_the_exposure_id() -> None:
    from langfuse import Langfuse

    for exposure_id in (EXPOSURE_ID, "exp-1", "ünï"):
        assert fallback_trace_id(exposure_id) == Langfuse.create_trace_id(seed=exposure_id)


def test_the_trace_is_the_first_of_attributes_exposure_otel_ids_fallback() -> None:
    named = {"langfuse.trace_id": "t-own", "langfuse.observation_id": "o-own"}
    event = every_kind()["action"]
    own = event.model_copy(update={"attributes": named})
    known = {EXPOSURE_ID: ("t-exposure", "o-exposure")}
    assert score_target(own, known) == ("t-own", "o-own")
    assert score_target(event, known) == ("t-exposure", "o-exposure")
    assert score_target(event) == (OTEL_TRACE, OTEL_SPAN)
    no_otel = event.model_copy(update={"trace_id": None, "span_id": None})
    assert score_target(no_otel) == (fallback_trace_id(EXPOSURE_ID), None)
    assert score_target(event, use_otel_ids=False) == (fallback_trace_id(EXPOSURE_ID), None)
    trace_only = event.model_copy(update={"attributes": {"langfuse.trace_id": "t-own"}})
    assert score_target(trace_only) == ("t-own", None)


def test_exposure_attributes_name_the_trace_of_its_signals_through_the_pipeline(
    server: LangfuseServer,
) -> None:
    client = run_client(exporter_for(server))
    attributes = {"langfuse.trace_id": "a" * 32, "langfuse.observation_id": "b" * 16}
    with client.exposure("reply-draft", model="drafter", attributes=attributes) as exp:
        pass
    action = client.action(exp.token, "copied")
    with client.exposure("other", model="drafter") as other:
        pass
    fb = client.feedback(other, 1.0, comment="great")
    assert client.shutdown(timeout=10)
    assert action is not None
    assert fb is not None
    assert server.scores[action.id]["traceId"] == "a" * 32
    assert server.scores[action.id]["observationId"] == "b" * 16
    assert server.scores[fb.id]["traceId"] == fallback_trace_id(other.id)
    assert "observationId" not in server.scores[fb.id]
    assert set(server.scores) == {action.id, fb.id}  # exposures are not scores
    assert client.stats.exporters["langfuse"].delivered == 4


# -- the ingestion request -----------------------------------------------------------------------


def test_a_batch_is_one_post_to_the_ingestion_api_with_basic_auth(server: LangfuseServer) -> None:
    events = list(every_kind().values())
    exporter = exporter_for(server, environment="production")
    assert exporter.export(events) is ExportResult.SUCCESS
    [(path, headers, body)] = server.requests
    assert path == "/api/public/ingestion"
    expected_auth = base64.b64encode(f"{PUBLIC}:{SECRET_KEY}".encode()).decode()
    assert headers["authorization"] == f"Basic {expected_auth}"
    assert headers["content-type"] == "application/json"
    assert headers["x-langfuse-sdk-name"] == "signalkit-langfuse"
    assert set(body) == {"batch"}
    names = [(e["body"]["name"], e["body"]["value"], e["body"]["dataType"]) for e in body["batch"]]
    assert names == [s for kind in EXPECTED.values() for s in kind]
    by_id = {e.id: e for e in events}
    for envelope in body["batch"]:
        assert envelope["type"] == "score-create"
        assert envelope["id"] == envelope["body"]["id"]
        event = by_id[envelope["body"]["metadata"]["signalkit_event_id"]]
        assert datetime.fromisoformat(envelope["timestamp"]) == event.ts
        assert envelope["body"]["environment"] == "production"
    assert server.statuses == [207]
    assert len(server.scores) == 8


def test_wrong_keys_pause_the_exporter_and_never_show_the_secret(server: LangfuseServer) -> None:
    exporter = LangfuseExporter(PUBLIC, "sk-lf-wrong-secret", host=server.base_url)
    outcome = exporter.export(signals(1))
    assert isinstance(outcome, ExportFailure)
    assert outcome.unauthorized
    assert outcome.status == 401
    assert "sk-lf-wrong-secret" not in outcome.message + repr(exporter) + exporter.endpoint
    assert exporter.endpoint.endswith("/api/public/ingestion")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"public_key": ""}, "public_key"),
        ({"secret_key": "has space"}, "secret_key"),
        ({"host": "cloud.langfuse.com"}, "host"),
        ({"host": "https://u:p@cloud.langfuse.com"}, "host"),
        ({"environment": "Prod"}, "environment"),
        ({"environment": "langfuse-x"}, "environment"),
        ({"score_prefix": ""}, "score_prefix"),
        ({"use_otel_ids": "yes"}, "use_otel_ids"),
        ({"max_vendor_event_bytes": 10}, "max_vendor_event_bytes"),
    ],
)
def test_bad_configuration_names_the_field(options: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"public_key": PUBLIC, "secret_key": SECRET_KEY, **options}
    with pytest.raises(ConfigError, match=rf"LangfuseExporter\.{field}"):
        LangfuseExporter(**arguments)


def test_exposures_alone_send_nothing(server: LangfuseServer) -> None:
    exporter = exporter_for(server)
    assert exporter.export([every_kind()["exposure"]]) is ExportResult.SUCCESS
    assert server.requests == []


# -- 207 accounting, retries, limits -------------------------------------------------------------


def test_scores_langfuse_refuses_are_set_apart_without_sending_anything_again(
    server: LangfuseServer,
) -> None:
    events = signals(10)
    refused = {events[2].id, events[6].id}
    server.event_status = lambda i: (400, "Invalid request data: bad") if i in refused else None
    exporter = exporter_for(server)
    outcome = exporter.export(events)
    assert isinstance(outcome, ExportFailure)
    assert outcome.too_large
    assert not outcome.retryable
    assert "refused scores of 2 of 10 events" in outcome.message
    # The lane splits in halves: no half is sent again, and each refused event ends alone.
    assert isinstance(exporter.export(events[:5]), ExportFailure)
    assert exporter.export(events[:2]) is ExportResult.SUCCESS
    lone = exporter.export([events[2]])
    assert isinstance(lone, ExportFailure)
    assert not lone.retryable
    assert not lone.too_large
    assert lone.status == 400
    assert "Invalid request data: bad" in lone.message
    assert len(server.ingestion_requests()) == 1
    assert set(server.scores) == {e.id for e in events} - refused


def test_207_errors_count_as_rejected_through_the_pipeline(server: LangfuseServer) -> None:
    client = run_client(exporter_for(server))
    with client.exposure("reply-draft", model="drafter") as exp:
        pass
    recorded = [client.action(exp, "accepted") for _ in range(9)]
    ids = [e.id for e in recorded if e is not None]
    refused = {ids[2], ids[6]}
    server.event_status = lambda i: (404, "Resource not found") if i in refused else None
    assert client.shutdown(timeout=10)
    stats = client.stats.exporters["langfuse"]
    assert stats.dropped == {"rejected": 2}
    assert stats.delivered == 8  # the exposure and 7 actions
    assert len(server.ingestion_requests()) == 1  # nothing was sent twice
    assert set(server.scores) == set(ids) - refused
    assert set(server.writes.values()) == {1}


def fail_once(ids: set[str], status: int = 500) -> Any:
    failed: set[str] = set()

    def answer(score_id: str) -> tuple[int, str] | None:
        if score_id in ids and score_id not in failed:
            failed.add(score_id)
            return status, "Internal Server Error"
        return None

    return answer


def test_scores_that_met_a_5xx_or_429_are_sent_again_alone(server: LangfuseServer) -> None:
    events = signals(6)
    flaky = {events[1].id, events[4].id}
    fail_500 = fail_once({events[1].id}, 500)
    fail_429 = fail_once({events[4].id}, 429)
    server.event_status = lambda i: fail_500(i) or fail_429(i)
    exporter = exporter_for(server)
    first = exporter.export(events)
    assert isinstance(first, ExportFailure)
    assert first.retryable
    assert not first.too_large
    assert "did not take 2 of 6 scores" in first.message
    assert exporter.export(events) is ExportResult.SUCCESS
    second = server.ingestion_requests()[1][2]
    assert {e["id"] for e in second["batch"]} == flaky  # the accepted ones are not sent again
    assert set(server.scores) == {e.id for e in events}
    assert set(server.writes.values()) == {1}


def test_per_score_5xx_are_retried_through_the_pipeline(server: LangfuseServer) -> None:
    client = run_client(exporter_for(server))
    with client.exposure("reply-draft", model="drafter") as exp:
        pass
    recorded = [client.correction(exp, "draft", f"final {i}") for i in range(5)]
    ids = {e.id for e in recorded if e is not None}
    server.event_status = fail_once({f"{i}.similarity" for i in ids})
    assert client.shutdown(timeout=10)
    stats = client.stats
    assert stats.exporters["langfuse"].dropped == {}
    assert stats.exporters["langfuse"].delivered == 6
    assert stats.retried >= 1
    assert len(server.scores) == 10
    assert set(server.writes.values()) == {1}


def test_a_lost_answer_is_retried_and_the_stable_ids_overwrite(server: LangfuseServer) -> None:
    events = signals(4)
    exporter = exporter_for(server)
    server.lose_next_answer(502)  # stored, but the client hears a 502
    failure = exporter.export(events)
    assert isinstance(failure, ExportFailure)
    assert failure.retryable
    assert failure.status == 502
    assert exporter.export(events) is ExportResult.SUCCESS
    assert set(server.scores) == {e.id for e in events}  # four scores, not eight
    assert set(server.writes.values()) == {2}
    first, second = server.ingestion_requests()
    assert first[2] == second[2]


def test_a_whole_request_5xx_is_retried_by_the_pipeline(server: LangfuseServer) -> None:
    server.fail_next(503, 500)
    client = run_client(exporter_for(server))
    with client.exposure("reply-draft", model="drafter") as exp:
        pass
    action = client.action(exp, "accepted")
    assert client.shutdown(timeout=10)
    assert action is not None
    assert set(server.scores) == {action.id}
    assert server.statuses == [503, 500, 207]
    assert client.stats.exporters["langfuse"].delivered == 2


def test_an_unreadable_2xx_answer_counts_as_accepted(server: LangfuseServer) -> None:
    server.answer_next(200, "<html>ok</html>")
    exporter = exporter_for(server)
    assert exporter.export(signals(3)) is ExportResult.SUCCESS
    assert len(server.requests) == 1


def test_oversize_batches_are_split_under_max_batch_bytes(server: LangfuseServer) -> None:
    limit = 40_000
    client = run_client(exporter_for(server, max_batch_bytes=limit, max_vendor_event_bytes=20_000))
    with client.exposure("reply-draft", model="drafter") as exp:
        pass
    long = "word " * 1_000  # 5 kB in each feedback comment (and again in its metadata)
    recorded = [client.feedback(exp, 1.0, comment=long) for _ in range(30)]
    assert client.shutdown(timeout=20)
    requests = server.ingestion_requests()
    assert len(requests) > 1
    assert all(len(json_bytes(body)) <= limit for _, _, body in requests)
    assert set(server.scores) == {e.id for e in recorded if e is not None}
    assert set(server.writes.values()) == {1}
    assert client.stats.exporters["langfuse"].dropped == {}


def test_an_event_over_the_per_event_limit_has_its_metadata_texts_cut(
    server: LangfuseServer,
) -> None:
    big = every_kind()["correction"].model_copy(
        update={"original": "o" * 30_000, "corrected": "c" * 30_000}
    )
    exporter = exporter_for(server, max_vendor_event_bytes=10_000)
    assert exporter.export([big]) is ExportResult.SUCCESS
    [(_, _, body)] = server.ingestion_requests()
    main = body["batch"][0]
    assert len(json_bytes(main)) <= 10_000
    metadata = main["body"]["metadata"]
    assert metadata[TRUNCATED] == ["signalkit_corrected", "signalkit_original"]
    assert metadata["signalkit_original"].startswith("ooo")
    assert metadata["signalkit_edit_distance"] == 9  # measures stay exact


def test_an_event_that_cannot_fit_is_too_large(server: LangfuseServer) -> None:
    huge = every_kind()["action"].model_copy(update={"exposure_id": "x" * 5_000})
    exporter = exporter_for(server, max_vendor_event_bytes=4_000)
    outcome = exporter.export([huge])
    assert isinstance(outcome, ExportFailure)
    assert outcome.too_large
    assert server.requests == []


def json_bytes(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


# -- the same scores through the Langfuse SDK ----------------------------------------------------

SCORE_FIELDS = (
    "id",
    "traceId",
    "observationId",
    "name",
    "value",
    "dataType",
    "comment",
    "metadata",
    "environment",
)


@pytest.fixture
def sdk_client(server: LangfuseServer) -> Iterator[Any]:
    langfuse = pytest.importorskip("langfuse")
    from opentelemetry.sdk.trace import TracerProvider

    # The SDK keeps one client per public key for the process, even after shutdown(): a new
    # key per test gives each test a client of its own.
    public_key = f"pk-lf-{uuid.uuid4().hex}"
    server.allow(public_key, SECRET_KEY)
    client = langfuse.Langfuse(
        public_key=public_key,
        secret_key=SECRET_KEY,
        base_url=server.base_url,
        tracer_provider=TracerProvider(),  # not the process-wide one: other tests share it
        flush_at=1000,
        flush_interval=60,
    )
    yield client
    client.shutdown()


@pytest.mark.parametrize("kind", [k for k in EXPECTED if k != "exposure"])
def test_the_langfuse_sdk_sends_the_same_scores_as_the_exporter(
    kind: str, server: LangfuseServer, sdk_client: Any
) -> None:
    event = every_kind()[kind]
    through_sdk = LangfuseClientExporter(sdk_client, environment="production")
    assert through_sdk.export([event]) is ExportResult.SUCCESS
    sdk_client.flush()
    assert any(path == "/api/public/scores" for path, _, _ in server.requests)
    from_sdk = dict(server.scores)
    server.scores.clear()
    assert exporter_for(server, environment="production").export([event]) is ExportResult.SUCCESS
    ours = dict(server.scores)
    assert len(ours) == len(EXPECTED[kind])
    assert set(from_sdk) == set(ours)
    for score_id, our_score in ours.items():
        sdk_score = from_sdk[score_id]
        for field in SCORE_FIELDS:
            assert sdk_score.get(field) == our_score.get(field), field
        assert datetime.fromisoformat(sdk_score["timestamp"]) == event.ts
        assert datetime.fromisoformat(our_score["timestamp"]) == event.ts


def test_inside_a_langfuse_observation_scores_attach_to_it(
    server: LangfuseServer, sdk_client: Any
) -> None:
    client = run_client(exporter_for(server))
    with sdk_client.start_as_current_observation(name="draft-reply") as span:
        with client.exposure("reply-draft", model="drafter") as exp:
            pass
        trace_id, observation_id = span.trace_id, span.id
    action = client.action(exp.token, "accepted")
    assert client.shutdown(timeout=10)
    assert action is not None
    assert server.scores[action.id]["traceId"] == trace_id
    assert server.scores[action.id]["observationId"] == observation_id


def test_the_client_exporter_needs_a_client_with_create_score() -> None:
    with pytest.raises(ConfigError, match=r"LangfuseClientExporter\.client"):
        LangfuseClientExporter(object())
    with pytest.raises(ConfigError, match=r"LangfuseClientExporter\.environment"):
        LangfuseClientExporter(type("C", (), {"create_score": print})(), environment="UP")


def test_a_refusing_client_drops_the_event_alone() -> None:
    calls: list[str] = []

    class Refusing:
        def create_score(self, **score: Any) -> None:
            calls.append(score["score_id"])
            if score["name"] == "signalkit.toggle":
                raise ValueError("no toggles here")

    exporter = LangfuseClientExporter(Refusing())
    events = every_kind()
    split = exporter.export([events["action"], events["toggle"]])
    assert isinstance(split, ExportFailure)
    assert split.too_large
    alone = exporter.export([events["toggle"]])
    assert isinstance(alone, ExportFailure)
    assert not alone.too_large
    assert not alone.retryable
    assert "no toggles here" in alone.message
    assert exporter.export([events["action"]]) is ExportResult.SUCCESS


def test_without_the_sdk_the_client_exporter_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langfuse", None)  # as if it were not installed
    with pytest.raises(SdkNotInstalled, match=re.escape(INSTALL_HINT)):
        LangfuseClientExporter()
    assert issubclass(SdkNotInstalled, ConfigError)
    exporter = LangfuseExporter(PUBLIC, SECRET_KEY)  # the HTTP exporter needs no SDK
    assert exporter.endpoint == "https://[redacted]@cloud.langfuse.com/api/public/ingestion"


# -- the public face -----------------------------------------------------------------------------


def test_all_is_the_public_face_and_every_name_is_documented() -> None:
    module = importlib.import_module("signalkit_langfuse")
    public = {n for n in dir(module) if not n.startswith("_")} | {"__version__"}
    submodules = {n for n in public if inspect.ismodule(getattr(module, n))}
    assert set(module.__all__) == public - submodules
    assert signalkit_langfuse.__version__
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name


def test_gzipped_bodies_are_taken(server: LangfuseServer) -> None:
    exporter = exporter_for(server, gzip_threshold_bytes=0)
    events = signals(3)
    assert exporter.export(events) is ExportResult.SUCCESS
    [(_, headers, _)] = server.requests
    assert headers["content-encoding"] == "gzip"
    assert set(server.scores) == {e.id for e in events}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_sends_on_its_own_connection(server: LangfuseServer) -> None:
    exporter = exporter_for(server)
    assert exporter.export(signals(1)) is ExportResult.SUCCESS
    pid = os.fork()
    if pid == 0:  # the child: must not use (or close) the parent's pooled connection
        ok = exporter.export(signals(1, start=10)) is ExportResult.SUCCESS
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert exporter.export(signals(1, start=20)) is ExportResult.SUCCESS
    assert set(server.scores) == {event_id(1), event_id(10), event_id(20)}
    parent, child, parent_again = server.peers
    assert parent == parent_again  # the parent kept its connection
    assert child != parent


def test_the_readme_example_runs_as_written(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    first = readme.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(first, "README.md", "exec"), namespace)
    client = namespace["client"]
    [jsonl, langfuse] = client.exporters
    assert isinstance(jsonl, sk.JsonlExporter)
    assert isinstance(langfuse, LangfuseExporter)
    assert langfuse.endpoint == "https://[redacted]@cloud.langfuse.com/api/public/ingestion"
    assert langfuse.environment == "production"
    assert client.shutdown(timeout=5)
