"""The browser relay: what a page may send, what it gets back, and what is recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import signalkit as sk
from signalkit.relay import BROWSER_KINDS, Relay, relay_script, script_response

SECRET = "relay-test-secret-0123456789abcdef"


@pytest.fixture
def memory() -> sk.MemoryExporter:
    return sk.MemoryExporter()


@pytest.fixture
def client(memory: sk.MemoryExporter) -> Iterator[sk.Client]:
    c = sk.Client("relay-test", exporters=[memory], secret=SECRET)
    yield c
    c.shutdown(timeout=2)


def shown(client: sk.Client, **kw: Any) -> sk.Exposure:
    with client.exposure("reply-draft", model="drafter", model_version="v2", **kw) as exp:
        pass
    return exp


def post(relay: Relay, *signals: dict[str, Any], key: str = "k") -> tuple[int, dict[str, Any]]:
    response = relay.handle(orjson.dumps({"signals": list(signals)}), key=key)
    return response.status, response.payload


def signals_of(client: sk.Client, memory: sk.MemoryExporter) -> list[sk.Event]:
    assert client.flush(5)
    return [e for e in memory.events if e.kind != "exposure"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_valid_batch_is_recorded_with_each_kind(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    relay = Relay(client)
    status, body = post(
        relay,
        {"kind": "toggle", "token": exp.token, "state": "expanded", "element": "sources"},
        {"kind": "toggle", "token": exp.token, "state": "collapsed", "dwell_ms": 1200},
        {"kind": "action", "token": exp.token, "action": "accepted", "item_id": "kb-1"},
        {"kind": "feedback", "token": exp.token, "rating": 1},
        {"kind": "correction", "token": exp.token, "original": "Hi there", "corrected": "Hello"},
    )
    assert (status, body) == (202, {"accepted": 5, "duplicates": 0, "rejected": []})
    events = signals_of(client, memory)
    assert [e.kind for e in events] == ["toggle", "toggle", "action", "feedback", "correction"]
    assert all(e.exposure_id == exp.id for e in events)
    assert events[1].dwell_ms == 1200  # type: ignore[union-attr]
    assert events[2].item_id == "kb-1"  # type: ignore[union-attr]
    assert events[4].corrected == "Hello"  # type: ignore[union-attr]
    assert relay.stats().accepted == 5


def test_age_ms_dates_the_signal_on_the_servers_clock(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=10)
    exp = shown(client, at=past)  # shown 10 s ago
    before = time.time()
    status, _ = post(Relay(client), {"kind": "action", "token": exp.token, "age_ms": 4000})
    after = time.time()
    assert status == 202
    (event,) = signals_of(client, memory)
    # it happened 4 s before the page sent it: ~6 s after the exposure, dated accordingly
    shown_s = past.timestamp()
    ttl = event.time_to_action_ms  # type: ignore[union-attr]
    assert (before - 4 - shown_s) * 1000 - 2 <= ttl <= (after - 4 - shown_s) * 1000 + 2
    assert before - 4.002 <= event.ts.timestamp() <= after - 3.998


def test_the_requests_subject_comes_from_context_not_from_the_page(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    with sk.context(user_id="server-user", session_id="s-9"):
        status, _ = post(Relay(client), {"kind": "action", "token": exp.token})
    assert status == 202
    (event,) = signals_of(client, memory)
    assert (event.subject.user_id, event.subject.session_id) == ("server-user", "s-9")


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "token_tampered"),
        (lambda t: "sk1.not-base64!!", "token_malformed"),
        (lambda t: "hello", "token_malformed"),
        (lambda t: None, "token_malformed"),
    ],
)
def test_forged_tokens_get_403_naming_the_reason_and_record_nothing(
    client: sk.Client, memory: sk.MemoryExporter, mangle: Any, reason: str
) -> None:
    exp = shown(client)
    signal = {"kind": "action", "token": mangle(exp.token)}
    if signal["token"] is None:
        del signal["token"]
    status, body = post(Relay(client), signal)
    assert status == 403
    assert body["accepted"] == 0
    assert body["rejected"][0]["reason"] == reason
    assert body["rejected"][0]["field"] == "token"
    assert SECRET not in orjson.dumps(body).decode()
    assert signals_of(client, memory) == []
    assert client.stats.rejected.get(reason) == 1


def test_token_signed_with_another_key_is_refused(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    other = sk.Client("attacker", exporters=[sk.MemoryExporter()], secret="another-secret-" * 3)
    try:
        exp = shown(other)
    finally:
        other.shutdown(1)
    status, body = post(Relay(client), {"kind": "action", "token": exp.token})
    assert status == 403
    assert body["rejected"][0]["reason"] == "token_unknown_key"
    assert signals_of(client, memory) == []


def test_expired_token_is_refused(memory: sk.MemoryExporter) -> None:
    c = sk.Client("relay-test", exporters=[memory], secret=SECRET, token_max_age_s=60)
    try:
        exp = shown(c, at=datetime.now(UTC) - timedelta(minutes=5))
        status, body = post(Relay(c), {"kind": "action", "token": exp.token})
        assert status == 403
        assert body["rejected"][0]["reason"] == "token_expired"
    finally:
        c.shutdown(2)


def test_a_forgery_in_a_batch_does_not_cost_the_valid_signals(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    status, body = post(
        Relay(client),
        {"kind": "action", "token": exp.token, "action": "copied"},
        {"kind": "action", "token": exp.token[:-6] + "AAAAAA"},
        {"kind": "feedback", "token": exp.token, "rating": 7},
    )
    assert status == 403  # a forgery outranks the bad rating
    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "token"), (2, "rating")]
    assert [e.action for e in signals_of(client, memory)] == ["copied"]  # type: ignore[union-attr]


def test_invalid_fields_get_400_naming_the_field(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    cases = [
        ({"kind": "toggle", "token": exp.token, "state": "open"}, "state"),
        ({"kind": "action", "token": exp.token, "colour": "red"}, "colour"),
        ({"kind": "feedback", "token": exp.token, "rating": 9}, "rating"),
        ({"kind": "correction", "token": exp.token, "original": "a"}, "corrected"),
        ({"kind": "action", "token": exp.token, "age_ms": -5}, "age_ms"),
        ({"kind": "action", "token": exp.token, "age_ms": True}, "age_ms"),
        ({"kind": "action", "token": exp.token, "sid": ""}, "sid"),
        ({"kind": "action", "token": exp.token, "attributes": {"x": object}}, "attributes"),
        ({"kind": "teleport", "token": exp.token}, "kind"),
        ("not an object", "signals"),
    ]
    relay = Relay(client)
    for signal, field in cases:
        if field == "attributes":
            signal = {"kind": "action", "token": exp.token, "attributes": {"x": [1] * 5000}}
        response = relay.handle(orjson.dumps({"signals": [signal]}), key="k")
        assert response.status == 400, (signal, response.payload)
        (rejected,) = response.payload["rejected"]
        assert rejected["field"].split(".")[0] == field, rejected
        assert rejected["message"]
    assert signals_of(client, memory) == []


def test_outcomes_are_the_servers_to_record_unless_allowed(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    outcome = {"kind": "outcome", "token": exp.token, "name": "purchase", "value": 30}
    assert "outcome" not in BROWSER_KINDS
    status, body = post(Relay(client), outcome)
    assert (status, body["rejected"][0]["reason"]) == (403, "kind_not_allowed")
    status, _ = post(Relay(client, kinds=[*BROWSER_KINDS, "outcome"]), outcome)
    assert status == 202
    assert [e.kind for e in signals_of(client, memory)] == ["outcome"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"x" * (64 * 1024 + 1), "application/json", 413, "body_too_large"),
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[]", "application/json", 400, "malformed_batch"),
        (b'{"signals": {}}', "application/json", 400, "malformed_batch"),
        (b'{"signals": []}', "text/html", 415, "unsupported_media_type"),
        (b'{"signals": []}', None, 415, "unsupported_media_type"),
    ],
)
def test_request_level_errors(
    client: sk.Client, body: bytes, content_type: str | None, status: int, error: str
) -> None:
    relay = Relay(client)
    response = relay.handle(body, key="k", content_type=content_type)
    assert response.status == status
    assert response.payload["error"] == error
    assert response.headers["Content-Type"] == "application/json"
    assert relay.stats().rejected == {error: 1}


def test_text_plain_is_accepted_for_send_beacon(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    body = orjson.dumps({"signals": [{"kind": "action", "token": exp.token}]})
    response = Relay(client).handle(body, key="k", content_type="text/plain;charset=UTF-8")
    assert response.status == 202
    assert len(signals_of(client, memory)) == 1


def test_too_many_signals_in_one_request(client: sk.Client) -> None:
    exp = shown(client)
    relay = Relay(client, max_signals=3)
    status, body = post(relay, *[{"kind": "action", "token": exp.token}] * 4)
    assert (status, body["error"], body["field"]) == (413, "too_many_signals", "signals")


def test_rate_limit_per_caller_with_retry_after(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    clock = Clock()
    relay = Relay(client, rate=2, burst=4, clock=clock)
    one = {"kind": "action", "token": exp.token}
    assert post(relay, one, one, one, key="a")[0] == 202
    assert post(relay, one, key="a")[0] == 202
    response = relay.handle(orjson.dumps({"signals": [one, one]}), key="a")
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"  # 2 signals at 2/s
    assert post(relay, one, key="b")[0] == 202  # another caller has its own bucket
    clock.now += 1.0
    assert post(relay, one, one, key="a")[0] == 202
    assert len(signals_of(client, memory)) == 7
    assert relay.stats().rejected == {"rate_limited": 2}


def test_a_batch_larger_than_the_burst_can_never_pass(client: sk.Client) -> None:
    exp = shown(client)
    relay = Relay(client, rate=1, burst=2, clock=Clock())
    response = relay.handle(orjson.dumps({"signals": [{"kind": "action", "token": exp.token}] * 3}))
    assert response.status == 429
    assert response.headers["Retry-After"] == "60"


def test_one_token_cannot_carry_unlimited_signals(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp, other = shown(client), shown(client)
    relay = Relay(client, max_signals_per_exposure=3)
    one = {"kind": "action", "token": exp.token}
    status, body = post(relay, one, one, one, one)
    assert status == 429
    assert body["accepted"] == 3
    assert body["rejected"][0]["reason"] == "exposure_limit"
    assert post(relay, {"kind": "action", "token": other.token})[0] == 202
    assert len(signals_of(client, memory)) == 4


def test_resent_signal_with_same_sid_is_acknowledged_once(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    relay = Relay(client)
    signal = {"kind": "action", "token": exp.token, "sid": "0a1b2c"}
    assert post(relay, signal) == (202, {"accepted": 1, "duplicates": 0, "rejected": []})
    assert post(relay, signal) == (202, {"accepted": 0, "duplicates": 1, "rejected": []})
    assert len(signals_of(client, memory)) == 1
    assert relay.stats().duplicates == 1


def test_a_refused_signal_leaves_its_sid_and_quota_unused(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    exp = shown(client)
    relay = Relay(client, max_signals_per_exposure=1)
    bad = {"kind": "feedback", "token": exp.token, "rating": 3, "sid": "s1"}
    assert post(relay, bad)[0] == 400
    good = {**bad, "rating": 1}
    assert post(relay, good) == (202, {"accepted": 1, "duplicates": 0, "rejected": []})
    assert len(signals_of(client, memory)) == 1


def test_after_shutdown_the_relay_answers_503(memory: sk.MemoryExporter) -> None:
    c = sk.Client("relay-test", exporters=[memory], secret=SECRET)
    exp = shown(c)
    c.shutdown(2)
    status, body = post(Relay(c), {"kind": "action", "token": exp.token})
    assert status == 503
    assert body["rejected"][0]["reason"] == "after_shutdown"


def test_a_processor_dropping_the_signal_is_reported(memory: sk.MemoryExporter) -> None:
    c = sk.Client(
        "relay-test",
        exporters=[memory],
        secret=SECRET,
        processors=[lambda e: None if e.kind == "action" else e],
    )
    try:
        exp = shown(c)
        status, body = post(Relay(c), {"kind": "action", "token": exp.token})
        assert (status, body["rejected"][0]["reason"]) == (503, "not_recorded")
    finally:
        c.shutdown(2)


def test_memory_stays_bounded(client: sk.Client) -> None:
    relay = Relay(client, max_keys=50, max_exposures=20)
    exposures = [shown(client) for _ in range(60)]
    for i, exp in enumerate(exposures):
        post(relay, {"kind": "action", "token": exp.token, "sid": f"s{i}"}, key=f"caller-{i}")
    assert len(relay._buckets._state) == 50
    assert len(relay._per_exposure) == 20
    assert len(relay._seen) == 20


def test_concurrent_requests_add_up(client: sk.Client, memory: sk.MemoryExporter) -> None:
    relay = Relay(client, rate=1e6, burst=1e6, max_signals_per_exposure=10_000)
    exposures = [shown(client) for _ in range(8)]
    answers: list[int] = []

    def page(exp: sk.Exposure) -> None:
        for i in range(50):
            _, body = post(relay, {"kind": "action", "token": exp.token, "sid": f"{i}"})
            answers.append(body["accepted"])

    threads = [threading.Thread(target=page, args=(e,)) for e in exposures]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(answers) == 400
    assert relay.stats().accepted == 400
    assert len(signals_of(client, memory)) == 400


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none()
            | st.booleans()
            | st.floats()
            | st.integers(-(2**63), 2**63 - 1)
            | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=20,
        ).map(
            lambda doc: orjson.dumps(
                {"signals": doc if isinstance(doc, list) else [doc]}, option=orjson.OPT_NON_STR_KEYS
            )
        ),
    )
)
def test_any_body_gets_an_answer_never_an_exception(client: sk.Client, body: bytes) -> None:
    response = Relay(client).handle(body, key="fuzz")
    assert response.status in {202, 400, 403, 413}
    assert isinstance(response.payload, dict)


def test_bad_options_raise_config_error_naming_them(client: sk.Client) -> None:
    with pytest.raises(sk.ConfigError, match="kinds"):
        Relay(client, kinds=["action", "purchase"])
    with pytest.raises(sk.ConfigError, match="max_signals"):
        Relay(client, max_signals=0)
    with pytest.raises(sk.ConfigError, match="rate"):
        Relay(client, rate=float("nan"))


def test_relay_uses_the_default_client_when_none_given(tmp_path: Any) -> None:
    relay = Relay()
    assert relay.client is sk.get_client()


def test_relay_script_is_shipped_with_the_package() -> None:
    script = relay_script()
    assert "global.signalkit" in script
    assert "sendBeacon" in script
    assert "age_ms" in script


_ANY = (
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=30)
)
_FIELDS = [
    "age_ms", "sid", "attributes", "action", "item_id", "state", "element", "dwell_ms",
    "rating", "scale", "choice", "comment", "original", "corrected", "name", "value", "success",
]  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_signals_with_a_real_token_and_random_fields_never_raise(
    client: sk.Client, memory: sk.MemoryExporter, data: st.DataObject
) -> None:
    exp = shown(client)
    signals = data.draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "kind": st.sampled_from(
                        ["action", "toggle", "feedback", "correction", "outcome", "x"]
                    ),
                    "token": st.just(exp.token) | st.text(max_size=10),
                },
                optional={name: _ANY | st.lists(_ANY, max_size=3) for name in _FIELDS},
            ),
            max_size=5,
        )
    )
    relay = Relay(client, rate=1e9, burst=1e9)
    memory.clear()
    response = relay.handle(orjson.dumps({"signals": signals}), key="fuzz")
    body = response.payload
    assert response.status in {202, 400, 403, 429}
    assert body["accepted"] + body["duplicates"] + len(body["rejected"]) == len(signals)
    assert (response.status == 202) == (not body["rejected"])
    assert len(signals_of(client, memory)) == body["accepted"]


def test_the_script_answer_carries_a_strong_etag_and_a_304_for_it() -> None:

    first = script_response(None)
    assert first.status == 200
    assert first.body == relay_script().encode()
    assert first.headers["Content-Type"].startswith("text/javascript")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert len(etag) == 34
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = script_response(header)
        assert (again.status, again.body, again.headers["ETag"]) == (304, b"", etag)
    assert script_response('"other"').status == 200


def test_a_body_refused_before_the_relay_read_it_is_counted() -> None:
    relay = Relay(sk.Client("t", exporters=[sk.MemoryExporter()], secret="s" * 32))
    answer = relay.too_large("Content-Length 99999999 is")
    assert answer.status == 413
    assert orjson.loads(answer.body) == {
        "error": "body_too_large",
        "message": f"Content-Length 99999999 is over the limit of {relay.max_body_bytes} bytes",
    }
    assert relay.stats().rejected == {"body_too_large": 1}
