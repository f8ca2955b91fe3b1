"""signalkit.exporters.vendor: the helpers the analytics adapters (PostHog, Segment, Mixpanel,
Amplitude) share. The adapters' own tests check the payloads against each vendor's SDK; these
pin the helpers themselves."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

import signalkit as sk
from signalkit.exporters import vendor
from signalkit.exporters.vendor import (
    PREFIX,
    check_batch_fits,
    check_event_prefix,
    check_vendor_event_bytes,
    cut_texts_to_fit,
    encode_batch,
    epoch_ms,
    fitted_json,
    is_placeholder_id,
    json_size,
    pick_identity,
    put_signal_properties,
    signal_properties,
    truncated_name,
    utc,
)

T0 = datetime(2026, 11, 6, 8, 49, 37, 123456, tzinfo=UTC)
COMMON: dict[str, Any] = {
    "id": "019a5a2e-1c63-7000-8000-000000000002",
    "ts": T0,
    "service": "support-assistant",
    "exposure_id": "019a5a2e-1c63-7000-8000-000000000001",
    "producer_id": "19e760ca49c216dc",
    "seq": 2,
    "subject": sk.Subject(user_id="user-1", session_id="sess-1"),
    "attributes": {"plan": "pro", "seats": 12},
}
SCORE = sk.Score(
    strength=0.8,
    polarity=-0.5,
    reasons=(sk.Reason(factor="base", effect=0.7),),
    policy="default@1",
)


def correction(original: str = "Dear sir,", corrected: str = "Hi Sam,") -> sk.CorrectionEvent:
    return sk.CorrectionEvent(
        **COMMON,
        original=original,
        corrected=corrected,
        edit_distance=7,
        similarity=0.25,
        score=SCORE,
    )


def test_importing_signalkit_does_not_import_the_vendor_helpers() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, signalkit; print('signalkit.exporters.vendor' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"


def test_every_exported_helper_is_documented() -> None:
    for name in vendor.__all__:
        value = getattr(vendor, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), name


# -- signal_properties ---------------------------------------------------------------------


def test_signal_properties_flattens_with_the_prefix_and_leaves_out_absent_values() -> None:
    props = signal_properties(correction())
    assert props["plan"] == "pro"
    assert props["seats"] == 12
    assert props[PREFIX + "kind"] == "correction"
    assert props[PREFIX + "user_id"] == "user-1"
    assert props[PREFIX + "policy"] == "default@1"
    assert props[PREFIX + "reasons"] == ["base=0.7"]
    assert props[PREFIX + "original"] == "Dear sir,"
    assert PREFIX + "anonymous_id" not in props  # None is left out
    assert PREFIX + "trace_id" not in props
    assert list(props)[:2] == ["plan", "seats"]  # attributes first, signalkit's fields after


def test_signal_properties_fields_win_a_clash_and_the_prefix_is_a_parameter() -> None:
    event = correction().model_copy(update={"attributes": {"sk_kind": "mine"}})
    props = signal_properties(event, prefix="sk_")
    assert props["sk_kind"] == "correction"
    assert all(k.startswith("sk_") for k in props)


def test_signal_properties_of_an_exposure_counts_its_items() -> None:
    event = sk.ExposureEvent(
        **{**COMMON, "id": COMMON["exposure_id"]},
        surface="reply-draft",
        items=(sk.Item(id="doc-1"), sk.Item(id="doc-2")),
    )
    props = signal_properties(event)
    assert props[PREFIX + "item_count"] == 2
    assert props[PREFIX + "item_ids"] == ["doc-1", "doc-2"]


# -- cut_texts_to_fit / fitted_json -----------------------------------------------------------


def test_cut_texts_to_fit_cuts_the_longest_texts_first_and_names_them() -> None:
    event = correction(original="a" * 5000, corrected="b" * 100)
    props = signal_properties(event)
    props["$vendor_text"] = "v" * 300
    message: dict[str, Any] = {"event": "x", "properties": props}
    limit = json_size(message) - 2000
    assert cut_texts_to_fit(message, props, limit, json_size)
    assert json_size(message) <= limit
    assert props[PREFIX + "original"].startswith("aaa")
    assert len(props[PREFIX + "original"]) < 5000
    assert props[PREFIX + "corrected"] == "b" * 100  # short enough to be left whole
    assert props["$vendor_text"] == "v" * 300  # the vendor's own are never cut
    assert props[truncated_name()] == [PREFIX + "original"]
    assert props[PREFIX + "edit_distance"] == 7  # measures stay exact


def test_cut_texts_to_fit_says_false_when_nothing_can_make_it_fit() -> None:
    props = signal_properties(correction())
    message: dict[str, Any] = {"properties": props}
    assert not cut_texts_to_fit(message, props, 10, json_size)


def test_cut_texts_to_fit_measures_with_the_size_it_is_given() -> None:
    props = signal_properties(correction(original="é" * 3000))
    message: dict[str, Any] = {"properties": props}

    def sdk_size(value: Any) -> int:  # json.dumps escapes non-ASCII: 6 bytes per "é"
        return len(json.dumps(value).encode())

    assert cut_texts_to_fit(message, props, 4000, sdk_size)
    assert sdk_size(message) <= 4000


def test_fitted_json_is_the_plain_json_when_it_fits_and_none_when_it_cannot() -> None:
    props = signal_properties(correction())
    message: dict[str, Any] = {"properties": props}
    assert fitted_json(message, props, 10_000) == orjson.dumps(message)
    assert fitted_json(message, props, 10) is None
    big = signal_properties(correction(original="a" * 10_000))
    data = fitted_json({"properties": big}, big, 2000)
    assert data is not None
    assert len(data) <= 2000
    assert orjson.loads(data)["properties"][truncated_name()] == [PREFIX + "original"]


def test_check_batch_fits_names_the_event_over_the_limit_or_the_encoding_error() -> None:
    event = correction()
    assert check_batch_fits([event], lambda e: b"{}", limit=100, vendor="Acme") is None
    failure = check_batch_fits([event], lambda e: None, limit=100, vendor="Acme")
    assert failure is not None
    assert failure.too_large
    assert not failure.retryable
    assert event.id in failure.message
    assert "max_vendor_event_bytes=100" in failure.message

    def broken(e: sk.Event) -> bytes | None:
        raise TypeError("not JSON")

    failure = check_batch_fits([event], broken, limit=100, vendor="Acme")
    assert failure is not None
    assert not failure.too_large
    assert not failure.retryable
    assert failure.message.startswith("cannot encode the batch for Acme")


# -- put_signal_properties --------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def put(self, key: str, value: object) -> None:
        if value is not None:
            self.values[key] = value

    def put_list(self, key: str, values: list[str]) -> None:
        if values:
            self.values[key] = values


def test_put_signal_properties_writes_in_a_fixed_order_with_prefixed_attributes() -> None:
    sink = _Sink()
    put_signal_properties(correction(), sink, attribute_prefix="attr.")
    assert list(sink.values) == [
        "kind",
        "event_id",
        "exposure_id",
        "service",
        "session_id",
        "strength",
        "polarity",
        "score_policy",
        "score_reasons",
        "original",
        "corrected",
        "original_chars",
        "corrected_chars",
        "edit_distance",
        "similarity",
        "producer_id",
        "seq",
        "attr.plan",
        "attr.seats",
    ]
    assert sink.values["score_reasons"] == ["base=0.7"]
    assert sink.values["original_chars"] == len("Dear sir,")


# -- identity -------------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["null", " None ", "UNDEFINED", "0", "[]", "anon"])
def test_placeholder_user_ids_say_nobody(user_id: str) -> None:
    assert is_placeholder_id(user_id)


@pytest.mark.parametrize("user_id", [None, "user-1", "nullable", "00"])
def test_real_user_ids_are_not_placeholders(user_id: str | None) -> None:
    assert not is_placeholder_id(user_id)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (sk.Subject(user_id="u", anonymous_id="a", session_id="s"), ("u", "a")),
        (sk.Subject(user_id="u", session_id="s"), ("u", None)),
        (sk.Subject(user_id="null", anonymous_id="a"), (None, "a")),
        (sk.Subject(user_id="null", session_id="s"), (None, "session:s")),
        (sk.Subject(session_id="s"), (None, "session:s")),
        (sk.Subject(), (None, "exposure:exp-1")),
        (sk.Subject(user_id="", anonymous_id=""), (None, "exposure:exp-1")),
    ],
)
def test_pick_identity(subject: sk.Subject, expected: tuple[str | None, str | None]) -> None:
    assert pick_identity(subject, "exp-1") == expected


# -- time and names -------------------------------------------------------------------------


def test_utc_and_epoch_ms_take_a_naive_time_as_utc() -> None:
    naive = datetime(2026, 1, 1, 12, 0, 0, 999_999)
    assert utc(naive) == naive.replace(tzinfo=UTC)
    plus_two = datetime(2026, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus_two).tzinfo is UTC
    assert utc(plus_two).hour == 12
    assert epoch_ms(naive) == epoch_ms(naive.replace(tzinfo=UTC)) == 1767268800999
    assert epoch_ms(plus_two) == 1767268800000


def test_check_event_prefix() -> None:
    assert check_event_prefix("X", "signalkit") == "signalkit"
    for bad in ("", "  ", "a" * 101, "tab\there", 3):
        with pytest.raises(sk.ConfigError, match=r"^X\.event_prefix: "):
            check_event_prefix("X", bad)


def test_encode_batch_joins_the_events_between_head_and_tail() -> None:
    events = [correction(), correction()]
    assert encode_batch(events, lambda e: b"{}", b"[", b"]") == b"[{},{}]"
    with pytest.raises(ValueError, match="does not fit"):
        encode_batch(events, lambda e: None, b"[", b"]")


def test_check_vendor_event_bytes() -> None:
    assert check_vendor_event_bytes("X", 2048, room=4096) == 2048
    for bad in (1023, 4097, True, 2048.0, "2048"):
        with pytest.raises(
            sk.ConfigError, match=r"^X\.max_vendor_event_bytes: .* from 1024 to 4096"
        ):
            check_vendor_event_bytes("X", bad, room=4096)


def test_endpoint_url_puts_credentials_in_userinfo_and_refuses_hosts_with_their_own() -> None:
    from signalkit import ConfigError
    from signalkit.exporters.vendor import endpoint_url

    url = endpoint_url(
        "X.host",
        " https://eu.example.com/base/ ",
        "/batch",
        example="https://example.com",
        credentials=("k:y", "s@c"),
        query={"strict": "1"},
    )
    assert url == "https://k%3Ay:s%40c@eu.example.com/base/batch?strict=1"
    assert endpoint_url("X.host", "http://h:8080", "/b", example="e") == "http://h:8080/b"
    for bad in ("ftp://h", "h", "https://u:p@h", "https://h?x=1", "https://h#f", "", 3):
        with pytest.raises(ConfigError, match=r"X\.host: must be a URL such as e"):
            endpoint_url("X.host", bad, "/b", example="e")
