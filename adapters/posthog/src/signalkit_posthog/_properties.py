"""A signalkit event as flat analytics properties, and the cut that fits them to a size limit.

The same mapping is used by every form of the adapter (HTTP API and vendor SDK), so an event
looks the same in the vendor whichever way it went.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from signalkit.events import (
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    OutcomeEvent,
    ToggleEvent,
)

__all__ = ["PREFIX", "TRUNCATED", "event_properties", "fit"]

PREFIX = "signalkit_"
"""Every property signalkit writes starts with this; the product's own attributes do not."""

TRUNCATED = PREFIX + "truncated"
"""Names the properties that were cut to fit the vendor's per-event limit (sorted)."""

# Free text and lists that may be cut to fit. Names (surface, action, model...) are never cut:
# they are what analyses group by, and signalkit bounds them to 200 characters.
_CUTTABLE = frozenset(
    PREFIX + name for name in ("original", "corrected", "comment", "item_ids", "reasons")
)

_Value = TypeVar("_Value", str, list[Any])

_MAX_ROUNDS = 8  # one round fits in practice; a second absorbs the TRUNCATED marker itself


def event_properties(event: Event) -> dict[str, Any]:
    """The event's fields as flat properties: the product's ``attributes`` under their own names,
    then signalkit's fields as ``signalkit_<field>``, which win a clash. Absent values are left
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
            properties[PREFIX + name] = value
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


def fit(
    message: dict[str, Any],
    properties: dict[str, Any],
    limit: int,
    size: Callable[[Any], int],
) -> bool:
    """Cut ``properties`` (part of ``message``) until ``size(message) <= limit``; False if even
    cutting every cuttable value to nothing is not enough.

    The longest values are cut first, down to a common length ("water-filling"), so a long
    correction keeps as much of both texts as fits. Cuttable: the correction texts, the
    feedback comment, the impression list, the score reasons, and the product's string
    attributes (not ``$``-prefixed ones: those are the vendor's). A cut value keeps its start;
    its name is listed, sorted, in ``signalkit_truncated``. Measures (edit distance,
    similarity, lengths...) were computed on the full texts and stay exact.
    """
    cut: set[str] = set()
    for _ in range(_MAX_ROUNDS):
        total = size(message)
        if total <= limit:
            return True
        names = [
            name
            for name, value in properties.items()
            if _cuttable(name, value) and len(value) > 0 and name != TRUNCATED
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
        properties[TRUNCATED] = sorted(cut)
    return size(message) <= limit


def _cuttable(name: str, value: object) -> bool:
    if name in _CUTTABLE:
        return isinstance(value, str | list)
    return isinstance(value, str) and not name.startswith(("$", PREFIX))


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
