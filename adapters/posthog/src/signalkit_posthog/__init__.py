"""signalkit-posthog: send signalkit's scored user-feedback signals to PostHog.

Two forms, one mapping:

- :class:`PostHogExporter` speaks PostHog's batch API (``POST /batch/``) itself, through
  signalkit's HTTP exporter (retries, limits, byte-identical retries); no SDK needed.
- :class:`PostHogClientExporter` hands each event to a PostHog client you already configured
  (``pip install 'signalkit-posthog[sdk]'``).

Each signal becomes a PostHog event named ``signalkit <kind>`` whose ``uuid`` is the signalkit
event id (see :func:`posthog_event` and the README's mapping table).
"""

from ._event import (
    DEFAULT_EVENT_PREFIX,
    PREFIX,
    TRUNCATED,
    distinct_id,
    event_properties,
    posthog_event,
)
from ._http import DEFAULT_HOST, MAX_BATCH_BYTES, MAX_EVENT_BYTES, PostHogExporter
from ._sdk import INSTALL_HINT, PostHogClientExporter, SdkNotInstalled
from ._version import __version__

__all__ = [
    "DEFAULT_EVENT_PREFIX",
    "DEFAULT_HOST",
    "INSTALL_HINT",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "PREFIX",
    "TRUNCATED",
    "PostHogClientExporter",
    "PostHogExporter",
    "SdkNotInstalled",
    "__version__",
    "distinct_id",
    "event_properties",
    "posthog_event",
]
