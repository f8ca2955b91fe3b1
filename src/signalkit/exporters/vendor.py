"""Helpers for exporters to analytics vendors (PostHog, Segment, Mixpanel, Amplitude...).

What every such adapter does the same way lives here once, so an event looks the same in every
vendor whichever adapter sent it:

* :func:`signal_properties` flattens an event into vendor properties (``signalkit_<field>``),
  and :func:`cut_texts_to_fit` cuts its longest texts until the vendor's per-event limit is
  met, naming what it cut; :func:`fitted_json`, :func:`check_batch_fits`,
  :func:`encode_batch` and :func:`check_vendor_event_bytes` put them to work for an HTTP
  exporter.
* :func:`put_signal_properties` writes the same fields, unprefixed and in a fixed order, into a
  :class:`PropertySink` that applies the vendor's own value limits.
* :func:`pick_identity` chooses who an event is about (user, else a stable stand-in), ignoring
  the placeholder user ids (:func:`is_placeholder_id`) that vendors refuse or merge.
* :func:`utc`, :func:`epoch_ms` and :func:`check_event_prefix` are the small conversions and
  checks around them.

Only the standard library, :mod:`orjson` and signalkit's own modules are imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import orjson

from .._errors import ConfigError
from ..events import (
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    OutcomeEvent,
    Subject,
    ToggleEvent,
)
from .base import ExportFailure

__all__ = [
    "PLACEHOLDER_IDS",
    "PREFIX",
    "PropertySink",
    "check_batch_fits",
    "check_event_prefix",
    "check_vendor_event_bytes",
    "cut_texts_to_fit",
    "encode_batch",
    "endpoint_url",
    "epoch_ms",
    "fitted_json",
    "is_placeholder_id",
    "json_size",
    "pick_identity",
    "put_signal_properties",
    "signal_properties",
    "truncated_name",
    "utc",
]

PREFIX = "signalkit_"
"""Every property :func:`signal_properties` writes starts with this (by default); the product's
own attributes do not."""

PLACEHOLDER_IDS = frozenset(
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
"""User ids that only say "nobody" (compared stripped and lower-cased). Mixpanel's ``/import``
refuses them as ``distinct_id``; Amplitude would merge every such user into one. A user id like
these is treated as no user at all."""

# Free text and lists that may be cut to fit. Names (surface, action, model...) are never cut:
# they are what analyses group by, and signalkit bounds them to 200 characters.
_CUTTABLE_FIELDS = ("original", "corrected", "comment", "item_ids", "reasons")
_MAX_ROUNDS = 8  # one round fits in practice; a second absorbs the truncated marker itself
_PREFIX_MAX_CHARS = 100
_MIN_VENDOR_EVENT_BYTES = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

_Value = TypeVar("_Value", str, list[Any])


# -- flat, prefixed properties (PostHog, Segment) --------------------------------------------


def truncated_name(prefix: str = PREFIX) -> str:
    """The property naming, sorted, the properties :func:`cut_texts_to_fit` cut."""
    return prefix + "truncated"


def signal_properties(event: Event, *, prefix: str = PREFIX) -> dict[str, Any]:
    """The event's fields as flat properties: the product's ``attributes`` under their own names,
    then signalkit's fields as ``<prefix><field>``, which win a clash. Absent values are left
    out, so a property is either meaningful or missing."""
    properties: dict[str, Any] = dict(event.attributes)
    subject, model, score = event.subject, event.model, event.score
    own: list[tuple[str, Any]] = [
        ("kind", event.kind),
        ("event_id", event.id),
        ("exposure_id", event.exposure_id),
        ("service", event.service),
        ("producer_id", event.producer_id),
        ("seq", event.seq),
        ("user_id", subject.user_id),
        ("anonymous_id", subject.anonymous_id),
        ("session_id", subject.session_id),
        ("tenant_id", subject.tenant_id),
        ("model", model.name),
        ("model_version", model.version),
        ("model_variant", model.variant),
        ("trace_id", event.trace_id),
        ("span_id", event.span_id),
    ]
    if score is not None:
        own += [
            ("strength", score.strength),
            ("polarity", score.polarity),
            ("policy", score.policy or None),
            ("reasons", [f"{r.factor}={r.effect:g}" for r in score.reasons] or None),
        ]
    own += _kind_fields(event)
    for name, value in own:
        if value is not None:
            properties[prefix + name] = value
    return properties


def _kind_fields(event: Event) -> list[tuple[str, Any]]:
    if isinstance(event, ExposureEvent):
        items = [item.id for item in event.items]
        return [
            ("surface", event.surface),
            ("latency_ms", event.latency_ms),
            ("item_count", len(items)),
            ("item_ids", items or None),
        ]
    if isinstance(event, ActionEvent):
        return [
            ("action", event.action),
            ("item_id", event.item_id),
            ("time_to_action_ms", event.time_to_action_ms),
        ]
    if isinstance(event, CorrectionEvent):
        return [
            ("edit_distance", event.edit_distance),
            ("similarity", event.similarity),
            ("time_to_action_ms", event.time_to_action_ms),
            ("original", event.original),
            ("corrected", event.corrected),
        ]
    if isinstance(event, ToggleEvent):
        return [
            ("state", event.state),
            ("element", event.element),
            ("dwell_ms", event.dwell_ms),
            ("time_to_action_ms", event.time_to_action_ms),
        ]
    if isinstance(event, OutcomeEvent):
        return [
            ("outcome", event.name),  # "name" alone would be ambiguous next to the model's
            ("value", event.value),
            ("success", event.success),
            ("delay_ms", event.delay_ms),
        ]
    if isinstance(event, FeedbackEvent):
        return [
            ("rating", event.rating),
            ("scale_min", event.scale[0]),
            ("scale_max", event.scale[1]),
            ("choice", event.choice),
            ("comment", event.comment),
            ("time_to_action_ms", event.time_to_action_ms),
        ]
    return []


def cut_texts_to_fit(
    message: dict[str, Any],
    properties: dict[str, Any],
    limit: int,
    size: Callable[[Any], int],
    *,
    prefix: str = PREFIX,
    vendor_prefix: str = "$",
) -> bool:
    """Cut ``properties`` (part of ``message``) until ``size(message) <= limit``; False if even
    cutting every cuttable value to nothing is not enough.

    The longest values are cut first, down to a common length ("water-filling"), so a long
    correction keeps as much of both texts as fits. Cuttable: the correction texts, the
    feedback comment, the impression list, the score reasons (as :func:`signal_properties`
    named them with ``prefix``), and the product's string attributes (not those starting with
    ``vendor_prefix``: those are the vendor's). A cut value keeps its start; its name is
    listed, sorted, in :func:`truncated_name`. Measures (edit distance, similarity,
    lengths...) were computed on the full texts and stay exact.
    """
    truncated = truncated_name(prefix)
    cuttable = frozenset(prefix + name for name in _CUTTABLE_FIELDS)

    def can_cut(name: str, value: object) -> bool:
        if name in cuttable:
            return isinstance(value, str | list)
        return isinstance(value, str) and not name.startswith((vendor_prefix, prefix))

    cut: set[str] = set()
    for _ in range(_MAX_ROUNDS):
        total = size(message)
        if total <= limit:
            return True
        names = [
            name
            for name, value in properties.items()
            if can_cut(name, value) and len(value) > 0 and name != truncated
        ]
        if not names:
            return False
        sizes = [size(properties[name]) for name in names]
        empty = min(size(properties[name][:0]) for name in names)
        cap = _water_level(sizes, total - limit, empty)
        for name, value_size in zip(names, sizes, strict=True):
            if value_size > cap:
                properties[name] = _prefix_within(properties[name], cap, size)
                cut.add(name)
        properties[truncated] = sorted(cut)
    return size(message) <= limit


def _water_level(sizes: list[int], excess: int, floor: int) -> int:
    """The highest cap such that cutting every size above it down to it frees ``excess``
    bytes (``floor``, everything emptied, when no cap frees enough)."""
    low, high = floor, max(sizes)
    if sum(s - floor for s in sizes if s > floor) < excess:
        return floor
    while low < high:  # freed(cap) shrinks as cap grows: find the last cap freeing enough
        mid = (low + high + 1) // 2
        if sum(s - mid for s in sizes if s > mid) >= excess:
            low = mid
        else:
            high = mid - 1
    return low


def _prefix_within(value: _Value, cap: int, size: Callable[[Any], int]) -> _Value:
    """The longest start of ``value`` (characters of a str, items of a list) whose size is at
    most ``cap``."""
    low, high = 0, len(value)
    while low < high:
        mid = (low + high + 1) // 2
        if size(value[:mid]) <= cap:
            low = mid
        else:
            high = mid - 1
    return value[:low]


def json_size(value: Any) -> int:
    """Bytes of ``value``'s compact JSON (as :mod:`orjson` writes it)."""
    return len(orjson.dumps(value))


def fitted_json(
    message: dict[str, Any], properties: dict[str, Any], limit: int, *, prefix: str = PREFIX
) -> bytes | None:
    """``message`` as compact JSON of at most ``limit`` bytes, its texts cut if need be (see
    :func:`cut_texts_to_fit`; ``properties`` is the part of ``message`` to cut); None if it
    cannot fit."""
    data = orjson.dumps(message)
    if len(data) <= limit:
        return data
    if not cut_texts_to_fit(message, properties, limit, json_size, prefix=prefix):
        return None
    return orjson.dumps(message)


def check_batch_fits(
    batch: Sequence[Event],
    event_json: Callable[[Event], bytes | None],
    *,
    limit: int,
    vendor: str,
) -> ExportFailure | None:
    """None if every event of ``batch`` has a vendor JSON (``event_json`` gives None for one
    that cannot be cut to ``limit`` bytes); else the failure to return: ``too_large`` for an
    event over the limit, so the lane splits the batch and drops only that event, and not
    retryable for a value that cannot be JSON (it will not become JSON on a retry)."""
    try:
        for event in batch:
            if event_json(event) is None:
                return ExportFailure(
                    retryable=False,
                    too_large=True,
                    message=(
                        f"batch not sent: event {event.id} is over max_vendor_event_bytes="
                        f"{limit} even with its texts cut"
                    ),
                )
    except Exception as exc:
        return ExportFailure(
            retryable=False, message=f"cannot encode the batch for {vendor}: {exc!r}"[:300]
        )
    return None


def encode_batch(
    batch: Sequence[Event], event_json: Callable[[Event], bytes | None], head: bytes, tail: bytes
) -> bytes:
    """``head``, the events' vendor JSON joined by commas, ``tail``: the same bytes on every
    retry. ``ValueError`` for an event ``event_json`` cannot fit (:func:`check_batch_fits`
    turns such a batch away before it is encoded)."""
    parts: list[bytes] = []
    for event in batch:
        part = event_json(event)
        if part is None:
            raise ValueError(f"event {event.id} does not fit max_vendor_event_bytes")
        parts.append(part)
    return head + b",".join(parts) + tail


def check_vendor_event_bytes(
    owner: str, value: object, *, room: int, minimum: int = _MIN_VENDOR_EVENT_BYTES
) -> int:
    """``value`` if it is a usable per-event limit: an int from ``minimum`` to ``room`` (what a
    request leaves for the events); else :class:`signalkit.ConfigError` naming
    ``<owner>.max_vendor_event_bytes``."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= room:
        raise ConfigError(
            f"{owner}.max_vendor_event_bytes: must be an int from {minimum} "
            f"to {room} (max_batch_bytes less the body around the events), "
            f"got {value!r}"
        )
    return value


# -- properties through a vendor's limits (Mixpanel, Amplitude) --------------------------------


class PropertySink(Protocol):
    """Where :func:`put_signal_properties` writes: the vendor's own value limits apply there."""

    def put(self, key: str, value: object) -> None:
        """Set property ``key`` (``None`` is skipped)."""

    def put_list(self, key: str, values: list[str]) -> None:
        """Set list property ``key`` (an empty list is skipped)."""


def put_signal_properties(event: Event, sink: PropertySink, *, attribute_prefix: str) -> None:
    """Write the event's fields into ``sink`` under their own names, in a fixed order: who and
    what (kind, ids, service, session, tenant, model), the score (``score_policy``,
    ``score_reasons``), the kind's own fields, tracing and producer, then the product's
    ``attributes`` as ``<attribute_prefix><key>`` (so they never shadow a signalkit field)."""
    sink.put("kind", event.kind)
    sink.put("event_id", event.id)
    sink.put("exposure_id", event.exposure_id)
    sink.put("service", event.service)
    subject = event.subject
    sink.put("session_id", subject.session_id)
    sink.put("tenant_id", subject.tenant_id)
    sink.put("model", event.model.name)
    sink.put("model_version", event.model.version)
    sink.put("model_variant", event.model.variant)
    score = event.score
    if score is not None:
        sink.put("strength", score.strength)
        sink.put("polarity", score.polarity)
        sink.put("score_policy", score.policy or None)
        sink.put_list("score_reasons", [f"{r.factor}={r.effect:g}" for r in score.reasons])
    _put_kind_properties(event, sink)
    sink.put("trace_id", event.trace_id)
    sink.put("span_id", event.span_id)
    sink.put("producer_id", event.producer_id)
    sink.put("seq", event.seq)
    for key, value in event.attributes.items():
        sink.put(attribute_prefix + key, value)


def _put_kind_properties(event: Event, out: PropertySink) -> None:
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


# -- identity ------------------------------------------------------------------------------


def is_placeholder_id(user_id: str | None) -> bool:
    """Whether ``user_id`` only says "nobody" (see :data:`PLACEHOLDER_IDS`)."""
    return user_id is not None and user_id.strip().lower() in PLACEHOLDER_IDS


def pick_identity(subject: Subject, exposure_id: str) -> tuple[str | None, str | None]:
    """(user id, device id) for an event about ``subject``; at least one is set.

    The user is ``subject.user_id`` (unless :func:`is_placeholder_id`). The device is
    ``subject.anonymous_id``; with neither, a stable stand-in: ``session:<session_id>``, else
    ``exposure:<exposure_id>``, so that an exposure and the signals about it stay one funnel.
    """
    user_id = subject.user_id
    if is_placeholder_id(user_id):
        user_id = None
    if subject.anonymous_id:
        return user_id, subject.anonymous_id
    if user_id:
        return user_id, None
    if subject.session_id:
        return None, f"session:{subject.session_id}"
    return None, f"exposure:{exposure_id}"


# -- time and names --------------------------------------------------------------------------


def utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive time is taken as UTC (signalkit records UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def epoch_ms(ts: datetime) -> int:
    """``ts`` in whole milliseconds since the epoch (a naive time is taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MS


def check_event_prefix(owner: str, value: object) -> str:
    """``value`` if it is a usable event-name prefix (a printable str of 1 to 100 characters);
    else :class:`signalkit.ConfigError` naming ``<owner>.event_prefix``."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > _PREFIX_MAX_CHARS
        or not value.isprintable()
    ):
        raise ConfigError(
            f"{owner}.event_prefix: must be a printable str of 1 to {_PREFIX_MAX_CHARS} "
            f"characters, such as 'signalkit', got {value!r:.60}"
        )
    return value


def endpoint_url(
    field: str,
    host: object,
    path: str,
    *,
    example: str,
    credentials: tuple[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> str:
    """``{host}{path}`` for a vendor's batch endpoint, ``host`` checked (``field`` names it in
    the error, ``example`` shows a right one): http(s), a host, an optional path, and no
    credentials, query or fragment of its own. ``credentials`` (user, password) go in the
    URL's userinfo, which :class:`signalkit.HttpExporter` takes out, sends as Basic auth and
    redacts from every message."""
    problem = (
        f"{field}: must be a URL such as {example}, with no credentials, query or fragment "
        "(keys go in their own arguments)"
    )
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(problem)
    try:
        parts = urlsplit(host.strip())
    except ValueError:
        raise ConfigError(problem) from None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(problem)
    netloc = parts.netloc
    if credentials is not None:
        user, password = credentials
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{netloc}"
    return urlunsplit(
        (parts.scheme, netloc, parts.path.rstrip("/") + path, urlencode(query or {}), "")
    )
