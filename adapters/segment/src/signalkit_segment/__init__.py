"""signalkit-segment: send signalkit's scored user-feedback signals to Segment.

Two forms, one mapping:

- :class:`SegmentExporter` speaks Segment's batch API (``POST /v1/batch``) itself, through
  signalkit's HTTP exporter (retries, limits, byte-identical retries); no SDK needed.
- :class:`SegmentClientExporter` hands each event to a Segment client you already configured
  (``pip install 'signalkit-segment[sdk]'``).

Each signal becomes a ``track`` call named ``signalkit <kind>`` whose ``messageId`` is the
signalkit event id (see :func:`segment_event` and the README's mapping table).
"""

from ._event import (
    DEFAULT_EVENT_PREFIX,
    PREFIX,
    TRUNCATED,
    event_properties,
    identities,
    segment_event,
)
from ._http import DEFAULT_HOST, MAX_BATCH_BYTES, MAX_EVENT_BYTES, SegmentExporter
from ._sdk import INSTALL_HINT, SdkNotInstalled, SegmentClientExporter
from ._version import __version__

__all__ = [
    "DEFAULT_EVENT_PREFIX",
    "DEFAULT_HOST",
    "INSTALL_HINT",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "PREFIX",
    "TRUNCATED",
    "SdkNotInstalled",
    "SegmentClientExporter",
    "SegmentExporter",
    "__version__",
    "event_properties",
    "identities",
    "segment_event",
]
