"""A signalkit event as a Mixpanel event: its name, who did it, when, its dedupe key and its
properties, within Mixpanel's documented limits.

The mapping is a pure function of the event, so a batch sent again (a retry, a split, a spool
replay, another process) maps to the same bytes, and Mixpanel's dedupe key — event name,
``distinct_id``, ``time`` and ``$insert_id`` — is the same every time.
"""

from __future__ import annotations

import hashlib
import re
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

__all__ = ["ATTRIBUTE_PREFIX", "DEFAULT_EVENT_PREFIX", "STRING_MAX_BYTES", "to_mixpanel_event"]

DEFAULT_EVENT_PREFIX = "signalkit."
"""Events are named ``signalkit.<kind>``, as the OpenTelemetry exporter names them."""

ATTRIBUTE_PREFIX = "attr."
"""The product's own ``attributes`` become properties ``attr.<key>``: an attribute can never
overwrite ``time``, ``distinct_id``, ``$insert_id`` or a signalkit property."""

STRING_MAX_BYTES = 255
"""Mixpanel keeps at most 255 bytes of a string property value and cuts the rest; the mapping
cuts first (at a character boundary) and says so in ``truncated``, so a long correction costs
255 bytes in the request instead of megabytes."""

LIST_MAX_ITEMS = 100
"""At most this many entries of a list property (``item_ids``; Mixpanel allows fewer than 255)."""

LIST_MAX_BYTES = 8000
"""At most this many bytes of strings in one list property (Mixpanel allows 8 KB)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
# distinct_id values Mixpanel's /import refuses as placeholders (its 400 Bad Request page): a
# user_id like these is treated as no user at all, so the event is not rejected.
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


def to_mixpanel_event(
    event: Event, *, token: str | None = None, event_prefix: str = DEFAULT_EVENT_PREFIX
) -> dict[str, Any]:
    """``{"event": ..., "properties": {...}}``: ``event`` as the Import API takes it.

    ``time`` is the event time in milliseconds since the epoch, ``$insert_id`` the signalkit
    event id (a UUIDv7 is 36 characters of hex and dashes, what Mixpanel accepts), and
    ``distinct_id`` the user, else the anonymous id, session or exposure (see the README).
    """
    user_id, device_id = identity(event)
    props: dict[str, Any] = {
        "time": epoch_ms(event.ts),
        "distinct_id": user_id if user_id is not None else f"$device:{device_id}",
        "$insert_id": insert_id(event.id),
    }
    if token is not None:
        props["token"] = token
    if user_id is not None:
        props["$user_id"] = user_id
    if device_id is not None:
        props["$device_id"] = device_id
    out = _Properties(props)
    out.put("kind", event.kind)
    out.put("event_id", event.id)
    out.put("exposure_id", event.exposure_id)
    out.put("service", event.service)
    subject = event.subject
    out.put("session_id", subject.session_id)
    out.put("tenant_id", subject.tenant_id)
    out.put("model", event.model.name)
    out.put("model_version", event.model.version)
    out.put("model_variant", event.model.variant)
    score = event.score
    if score is not None:
        out.put("strength", score.strength)
        out.put("polarity", score.polarity)
        out.put("score_policy", score.policy or None)
        out.put_list("score_reasons", [f"{r.factor}={r.effect:g}" for r in score.reasons])
    _kind_properties(event, out)
    out.put("trace_id", event.trace_id)
    out.put("span_id", event.span_id)
    out.put("producer_id", event.producer_id)
    out.put("seq", event.seq)
    for key, value in event.attributes.items():
        out.put(ATTRIBUTE_PREFIX + key, value)
    if out.truncated:
        props["truncated"] = out.truncated
    return {"event": event_prefix + event.kind, "properties": props}


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
    """(``$user_id``, ``$device_id``) of ``event``.

    The user is ``subject.user_id`` (unless it is a placeholder Mixpanel refuses). The device is
    ``subject.anonymous_id``; with neither, a stable stand-in: ``session:<session_id>``, else
    ``exposure:<exposure_id>``, so that an exposure and the signals about it stay one funnel.
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


def insert_id(event_id: str) -> str:
    """The event id, if it is what ``$insert_id`` accepts (at most 36 letters, digits or ``-``),
    else 36 hex digits of its BLAKE2b digest: stable, so dedupe still holds."""
    if _INSERT_ID.fullmatch(event_id):
        return event_id
    return hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=18).hexdigest()


def cut(text: str, max_bytes: int = STRING_MAX_BYTES) -> tuple[str, bool]:
    """(``text`` cut to ``max_bytes`` of UTF-8 at a character boundary, whether it was cut)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


class _Properties:
    """Puts properties in a fixed order, skipping ``None`` and cutting long strings."""

    __slots__ = ("props", "truncated")

    def __init__(self, props: dict[str, Any]) -> None:
        self.props = props
        self.truncated: list[str] = []
        """Names of the properties whose value was cut to Mixpanel's limits."""

    def put(self, key: str, value: object) -> None:
        if value is None:
            return
        if isinstance(value, str):
            value, was_cut = cut(value)
            if was_cut:
                self.truncated.append(key)
        self.props[key] = value

    def put_list(self, key: str, values: list[str]) -> None:
        if not values:
            return
        kept: list[str] = []
        size = 0
        was_cut = len(values) > LIST_MAX_ITEMS
        for value in values[:LIST_MAX_ITEMS]:
            value, cut_value = cut(value)
            size += len(value.encode("utf-8", "surrogatepass")) + 3  # quotes and comma
            if size > LIST_MAX_BYTES:
                was_cut = True
                break
            was_cut = was_cut or cut_value
            kept.append(value)
        if was_cut:
            self.truncated.append(key)
        self.props[key] = kept
