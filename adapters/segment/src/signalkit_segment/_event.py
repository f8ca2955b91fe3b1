"""A signalkit event as a Segment track call: name, identities, properties, timestamp, id."""

from __future__ import annotations

from typing import Any

from signalkit.events import Event
from signalkit.exporters.vendor import PREFIX, truncated_name, utc
from signalkit.exporters.vendor import signal_properties as event_properties

__all__ = [
    "DEFAULT_EVENT_PREFIX",
    "PREFIX",
    "TRUNCATED",
    "event_properties",
    "identities",
    "segment_event",
]

DEFAULT_EVENT_PREFIX = "signalkit"
"""Events are named ``"<prefix> <kind>"``: ``signalkit exposure``, ``signalkit action``..."""

TRUNCATED = truncated_name(PREFIX)
"""Names the properties that were cut to fit the vendor's per-event limit (sorted)."""


def segment_event(event: Event, *, event_prefix: str = DEFAULT_EVENT_PREFIX) -> dict[str, Any]:
    """The Segment track call both exporters send for ``event``.

    ``{"type": "track", "event", "userId"?, "anonymousId"?, "properties", "timestamp",
    "messageId", "context"}``: the name is ``"<event_prefix> <kind>"``, the identities the
    subject's (see :func:`identities`), the timestamp the event's own time (ISO 8601, UTC,
    milliseconds, as Segment's SDK writes it), and ``messageId`` the signalkit event id, which
    Segment uses to drop a duplicate. ``context.groupId`` is the subject's ``tenant_id``
    (Segment's spec: the account a call belongs to). Before any cut to the per-event limit, and
    without ``context.library``, which the HTTP exporter or the SDK adds.
    """
    user_id, anonymous_id = identities(event)
    message: dict[str, Any] = {"type": "track", "event": f"{event_prefix} {event.kind}"}
    if user_id is not None:
        message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    message["properties"] = event_properties(event)
    message["timestamp"] = utc(event.ts).isoformat(timespec="milliseconds")
    message["messageId"] = event.id
    context: dict[str, Any] = {}
    if event.subject.tenant_id:
        context["groupId"] = event.subject.tenant_id
    message["context"] = context
    return message


def identities(event: Event) -> tuple[str | None, str | None]:
    """(``userId``, ``anonymousId``); Segment needs at least one.

    ``userId`` is the subject's ``user_id``. ``anonymousId`` is its ``anonymous_id`` (sent
    next to a ``userId`` too, which lets Segment tie the two); with neither, the ``session_id``,
    else the ``exposure_id`` — stable for every signal about one exposure.
    """
    subject = event.subject
    user_id = subject.user_id or None
    anonymous_id = subject.anonymous_id or None
    if user_id is None and anonymous_id is None:
        anonymous_id = subject.session_id or event.exposure_id
    return user_id, anonymous_id
