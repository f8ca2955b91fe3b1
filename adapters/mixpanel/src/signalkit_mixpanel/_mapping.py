"""A signalkit event as a Mixpanel event: its name, who did it, when, its dedupe key and its
properties, within Mixpanel's documented limits.

The mapping is a pure function of the event, so a batch sent again (a retry, a split, a spool
replay, another process) maps to the same bytes, and Mixpanel's dedupe key — event name,
``distinct_id``, ``time`` and ``$insert_id`` — is the same every time.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from signalkit import Event
from signalkit.exporters.vendor import epoch_ms, pick_identity, put_signal_properties

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

_INSERT_ID = re.compile(r"[A-Za-z0-9-]{1,36}")


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
    put_signal_properties(event, out, attribute_prefix=ATTRIBUTE_PREFIX)
    if out.truncated:
        props["truncated"] = out.truncated
    return {"event": event_prefix + event.kind, "properties": props}


def identity(event: Event) -> tuple[str | None, str | None]:
    """(``$user_id``, ``$device_id``) of ``event``.

    The user is ``subject.user_id`` (unless it is a placeholder Mixpanel refuses). The device is
    ``subject.anonymous_id``; with neither, a stable stand-in: ``session:<session_id>``, else
    ``exposure:<exposure_id>``, so that an exposure and the signals about it stay one funnel.
    """
    return pick_identity(event.subject, event.exposure_id)


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
