"""A signalkit event as an Amplitude event: its type, who did it, when, its dedupe key and its
event properties, within Amplitude's limits.

The mapping is a pure function of the event, so a batch sent again (a retry, a split, a spool
replay, another process) maps to the same bytes and the same ``insert_id``, which Amplitude
dedupes for 7 days.
"""

from __future__ import annotations

from typing import Any

from signalkit import Event
from signalkit.exporters.vendor import epoch_ms, pick_identity, put_signal_properties

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
    put_signal_properties(event, props, attribute_prefix=ATTRIBUTE_PREFIX)
    if props.truncated:
        props.values["truncated"] = props.truncated
    out["event_properties"] = props.values
    out["library"] = LIBRARY
    return out


def identity(event: Event) -> tuple[str | None, str | None]:
    """(``user_id``, ``device_id``) of ``event``; at least one is set, as Amplitude requires.

    The user is ``subject.user_id`` (unless it only says "nobody", like ``null``). The device
    is ``subject.anonymous_id``; with neither, a stable stand-in: ``session:<session_id>``,
    else ``exposure:<exposure_id>``, so that an exposure and its signals stay one funnel.
    """
    return pick_identity(event.subject, event.exposure_id)


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
