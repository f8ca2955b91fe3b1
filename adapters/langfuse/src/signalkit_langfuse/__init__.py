"""signalkit-langfuse: send signalkit's user-feedback signals to Langfuse as scores.

Two forms, one mapping:

- :class:`LangfuseExporter` speaks Langfuse's batch ingestion API
  (``POST /api/public/ingestion``) itself, through signalkit's HTTP exporter, and accounts
  for Langfuse's per-event 207 answers; no SDK needed.
- :class:`LangfuseClientExporter` hands each score to a Langfuse client you already configured
  (``pip install 'signalkit-langfuse[sdk]'``).

Each signal becomes scores (``signalkit.<kind>``: the signed strength, and a few measures) on
the trace and observation of its exposure (see :func:`score_target`), with the signalkit event
id as the score id (see :func:`langfuse_scores` and the README's mapping table).
"""

from ._http import (
    DEFAULT_HOST,
    INGESTION_PATH,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    LangfuseExporter,
    ingestion_event,
)
from ._score import (
    COMMENT_MAX_CHARS,
    DEFAULT_SCORE_PREFIX,
    OBSERVATION_ID_ATTRIBUTE,
    TRACE_ID_ATTRIBUTE,
    TRUNCATED,
    fallback_trace_id,
    langfuse_scores,
    score_target,
)
from ._sdk import INSTALL_HINT, LangfuseClientExporter, SdkNotInstalled
from ._version import __version__

__all__ = [
    "COMMENT_MAX_CHARS",
    "DEFAULT_HOST",
    "DEFAULT_SCORE_PREFIX",
    "INGESTION_PATH",
    "INSTALL_HINT",
    "MAX_BATCH_BYTES",
    "MAX_EVENT_BYTES",
    "OBSERVATION_ID_ATTRIBUTE",
    "TRACE_ID_ATTRIBUTE",
    "TRUNCATED",
    "LangfuseClientExporter",
    "LangfuseExporter",
    "SdkNotInstalled",
    "__version__",
    "fallback_trace_id",
    "ingestion_event",
    "langfuse_scores",
    "score_target",
]
