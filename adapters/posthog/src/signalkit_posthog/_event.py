"""A signalkit event as a PostHog event: name, distinct id, properties, timestamp and uuid."""

from __future__ import annotations

from typing import Any

from signalkit.events import Event
from signalkit.exporters.vendor import PREFIX, truncated_name, utc
from signalkit.exporters.vendor import signal_properties as event_properties

__all__ = [
    "DEFAULT_EVENT_PREFIX",
    "PREFIX",
    "TRUNCATED",
    "distinct_id",
    "event_properties",
    "posthog_event",
]

DEFAULT_EVENT_PREFIX = "signalkit"
"""Events are named ``"<prefix> <kind>"``: ``signalkit exposure``, ``signalkit action``..."""

TRUNCATED = truncated_name(PREFIX)
"""Names the properties that were cut to fit the vendor's per-event limit (sorted)."""


def posthog_event(event: Event, *, event_prefix: str = DEFAULT_EVENT_PREFIX) -> dict[str, Any]:
    """The PostHog event both exporters send for ``event``.

    ``{"event", "distinct_id", "properties", "timestamp", "uuid"}``: the name is
    ``"<event_prefix> <kind>"``, the distinct id the subject's (see :func:`distinct_id`), the
    timestamp the event's own time (ISO 8601, UTC), and ``uuid`` the signalkit event id, which
    PostHog uses to drop a duplicate. Before any cut to the per-event limit, and without the
    library properties (``$lib``...) that the HTTP exporter or the SDK adds.
    """
    person, is_person = distinct_id(event)
    properties = event_properties(event)
    if not is_person:
        # A session or an exposure is not a person: don't make a person profile for it.
        properties["$process_person_profile"] = False
    return {
        "event": f"{event_prefix} {event.kind}",
        "distinct_id": person,
        "properties": properties,
        "timestamp": utc(event.ts).isoformat(),
        "uuid": event.id,
    }


def distinct_id(event: Event) -> tuple[str, bool]:
    """(PostHog distinct id, whether it names a person): the subject's ``user_id``, else its
    ``anonymous_id`` (both people), else its ``session_id``, else the ``exposure_id`` — stable
    for every signal about one exposure, so PostHog can still count and funnel them."""
    subject = event.subject
    if subject.user_id:
        return subject.user_id, True
    if subject.anonymous_id:
        return subject.anonymous_id, True
    if subject.session_id:
        return subject.session_id, False
    return event.exposure_id, False
