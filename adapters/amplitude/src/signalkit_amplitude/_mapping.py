"""A signalkit event as an Amplitude event: its type, who did it, when, its dedupe key and its
event properties, within Amplitude's limits.

The mapping is a pure function of the event, so a batch sent again (a retry, a split, a spool
replay, another process) maps to the same bytes and the same ``insert_id``, which Amplitude
dedupes for 7 days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from signalkit import (
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    OutcomeEvent,
    ToggleEvent,
)

from ._version import __version__

__all__ = [
    "ATTRIBUTE_PREFIX",
    "DEFAULT_EVENT_PREFIX",
    "LIBRARY",
    "STRING_MAX_CHARS",
    "to_amplitude_event",
]

DEFAULT_EVENT_PREFIX = "signalkit."
"""Events are named ``signalkit.<kind>``, as the OpenTelemetry exporter names them."""

ATTRIBUTE_PREFIX = "attr."
"""The product's own ``attributes`` become event properties ``attr.<key>``: an attribute can
never shadow a signalkit property."""

STRING_MAX_CHARS = 1024
"""Amplitude keeps 1,024 characters of a string (its Python SDK cuts every string to
``MAX_STRING_LENGTH = 1024`` before sending); the mapping cuts first and says so in
``truncated``, so a long correction costs 1 KB in the request instead of megabytes."""

LIST_MAX_ITEMS = 100
"""At most this many entries of a list property (``item_ids``)."""

LIBRARY = f"signalkit-amplitude/{__version__}"
"""Sent as each event's ``library``, as Amplitude's SDKs name themselves there."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# user ids that only say "nobody" (Amplitude: "don't set the user ID if there isn't one"; it
# would merge every such user into one): treated as no user at all.
_PLACEHOLDER_IDS = frozenset(
    {
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "<nil>",
        "0",
        "-1",
        "[]",
        "{}",
        "true",
        "false",
        "00000000-0000-0000-0000-000000000000",
    }
)


def to_amplitude_event(event: Event, *, event_prefix: str = DEFAULT_EVENT_PREFIX) -> dict[str, Any]:
    """``event`` as one entry of the HTTP V2 API's ``events`` list.

    ``time`` is the event time in milliseconds since the epoch, ``insert_id`` the signalkit
    event id (a UUIDv7), ``user_id`` the user and ``device_id`` the anonymous id, or, with
    neither, a stable stand-in from the session or the exposure (see the README).
    """
    user_id, device_id = identity(event)
    out: dict[str, Any] = {"event_type": event_prefix + event.kind}
    if user_id is not None:
        out["user_id"] = user_id
    if device_id is not None:
        out["device_id"] = device_id
    out["time"] = epoch_ms(event.ts)
    out["insert_id"] = event.id
    props = _Properties()
    props.put("kind", event.kind)
    props.put("event_id", event.id)
    props.put("exposure_id", event.exposure_id)
    props.put("service", event.service)
    subject = event.subject
    props.put("session_id", subject.session_id)
    props.put("tenant_id", subject.tenant_id)
    props.put("model", event.model.name)
    props.put("model_version", event.model.version)
    props.put("model_variant", event.model.variant)
    score = event.score
    if score is not None:
        props.put("strength", score.strength)
        props.put("polarity", score.polarity)
        props.put("score_policy", score.policy or None)
        props.put_list("score_reasons", [f"{r.factor}={r.effect:g}" for r in score.reasons])
    _kind_properties(event, props)
    props.put("trace_id", event.trace_id)
    props.put("span_id", event.span_id)
    props.put("producer_id", event.producer_id)
    props.put("seq", event.seq)
    for key, value in event.attributes.items():
        props.put(ATTRIBUTE_PREFIX + key, value)
    if props.truncated:
        props.values["truncated"] = props.truncated
    out["event_properties"] = props.values
    out["library"] = LIBRARY
    return out


def _kind_properties(event: Event, out: _Properties) -> None:
    if isinstance(event, ExposureEvent):
        out.put("surface", event.surface)
        out.put("latency_ms", event.latency_ms)
        if event.items:
            out.put("item_count", len(event.items))
            out.put_list("item_ids", [item.id for item in event.items])
    elif isinstance(event, ActionEvent):
        out.put("action", event.action)
        out.put("item_id", event.item_id)
        out.put("time_to_action_ms", event.time_to_action_ms)
    elif isinstance(event, CorrectionEvent):
        out.put("original", event.original)
        out.put("corrected", event.corrected)
        out.put("original_chars", len(event.original))
        out.put("corrected_chars", len(event.corrected))
        out.put("edit_distance", event.edit_distance)
        out.put("similarity", event.similarity)
        out.put("time_to_action_ms", event.time_to_action_ms)
    elif isinstance(event, ToggleEvent):
        out.put("state", event.state)
        out.put("element", event.element)
        out.put("dwell_ms", event.dwell_ms)
        out.put("time_to_action_ms", event.time_to_action_ms)
    elif isinstance(event, OutcomeEvent):
        out.put("outcome", event.name)
        out.put("value", event.value)
        out.put("success", event.success)
        out.put("delay_ms", event.delay_ms)
    elif isinstance(event, FeedbackEvent):
        out.put("rating", event.rating)
        out.put("scale_min", event.scale[0])
        out.put("scale_max", event.scale[1])
        out.put("choice", event.choice)
        out.put("comment", event.comment)
        out.put("time_to_action_ms", event.time_to_action_ms)


def identity(event: Event) -> tuple[str | None, str | None]:
    """(``user_id``, ``device_id``) of ``event``; at least one is set, as Amplitude requires.

    The user is ``subject.user_id`` (unless it only says "nobody", like ``null``). The device
    is ``subject.anonymous_id``; with neither, a stable stand-in: ``session:<session_id>``,
    else ``exposure:<exposure_id>``, so that an exposure and its signals stay one funnel.
    """
    subject = event.subject
    user_id = subject.user_id
    if user_id is not None and user_id.strip().lower() in _PLACEHOLDER_IDS:
        user_id = None
    if subject.anonymous_id:
        return user_id, subject.anonymous_id
    if user_id:
        return user_id, None
    if subject.session_id:
        return None, f"session:{subject.session_id}"
    return None, f"exposure:{event.exposure_id}"


def epoch_ms(ts: datetime) -> int:
    """``ts`` in whole milliseconds since the epoch (a naive time is taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MS


class _Properties:
    """Puts event properties in a fixed order, skipping ``None`` and cutting long strings."""

    __slots__ = ("truncated", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.truncated: list[str] = []
        """Names of the properties whose value was cut to Amplitude's limits."""

    def put(self, key: str, value: object) -> None:
        if value is None:
            return
        if isinstance(value, str) and len(value) > STRING_MAX_CHARS:
            value = value[:STRING_MAX_CHARS]
            self.truncated.append(key)
        self.values[key] = value

    def put_list(self, key: str, values: list[str]) -> None:
        if not values:
            return
        kept = [value[:STRING_MAX_CHARS] for value in values[:LIST_MAX_ITEMS]]
        if len(values) > LIST_MAX_ITEMS or any(len(v) > STRING_MAX_CHARS for v in values):
            self.truncated.append(key)
        self.values[key] = kept
