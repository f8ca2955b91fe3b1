"""A signalkit event as Langfuse scores: which trace and observation, names, values, metadata."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from signalkit import ConfigError
from signalkit.events import (
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    OutcomeEvent,
    ToggleEvent,
)
from signalkit.exporters.vendor import PREFIX, signal_properties, truncated_name

__all__ = [
    "COMMENT_MAX_CHARS",
    "DEFAULT_SCORE_PREFIX",
    "OBSERVATION_ID_ATTRIBUTE",
    "TRACE_ID_ATTRIBUTE",
    "TRUNCATED",
    "fallback_trace_id",
    "langfuse_scores",
    "score_target",
]

DEFAULT_SCORE_PREFIX = "signalkit"
"""Scores are named ``"<prefix>.<kind>"`` (``signalkit.action``...) and
``"<prefix>.<kind>.<measure>"`` for the extra ones (``signalkit.correction.similarity``)."""

TRACE_ID_ATTRIBUTE = "langfuse.trace_id"
"""Attribute that names the Langfuse trace an exposure (or a signal) belongs to."""

OBSERVATION_ID_ATTRIBUTE = "langfuse.observation_id"
"""Attribute that names the Langfuse observation (span, generation) within that trace."""

COMMENT_MAX_CHARS = 2000
"""A score's ``comment`` is cut to this many characters (the full text stays in metadata)."""

TRUNCATED = truncated_name(PREFIX)
"""Metadata key naming the metadata values that were cut to fit the per-event limit."""

DataType = Literal["NUMERIC", "CATEGORICAL", "BOOLEAN"]
Target = tuple[str, str | None]

_ENV_MAX_CHARS = 40


def fallback_trace_id(exposure_id: str) -> str:
    """The trace id used when nothing names one: ``sha256(exposure_id)``'s first 16 bytes in
    hex, the same as the Langfuse SDK's ``Langfuse.create_trace_id(seed=exposure_id)``.

    So an application can start its Langfuse trace with that id (``trace_context=
    {"trace_id": Langfuse.create_trace_id(seed=exposure.id)}``) and every score about the
    exposure lands on it, even a signal recorded in another process.
    """
    return hashlib.sha256(exposure_id.encode("utf-8", "surrogatepass")).digest()[:16].hex()


def score_target(
    event: Event, known: Mapping[str, Target] | None = None, *, use_otel_ids: bool = True
) -> Target:
    """(trace id, observation id or None) the event's scores attach to, first found of:

    1. the event's own attributes ``langfuse.trace_id`` (and ``langfuse.observation_id``);
    2. ``known[event.exposure_id]``: what the exposure's attributes said (the exporters learn
       it from the exposures they see);
    3. the OpenTelemetry ``trace_id``/``span_id`` signalkit recorded (the exposure's, carried to
       its signals): the Langfuse SDK v3+ traces with OpenTelemetry, so inside a Langfuse span
       these are its trace and observation ids (``use_otel_ids=False`` skips this step);
    4. :func:`fallback_trace_id` of the exposure id, with no observation.
    """
    own = _target_in(event.attributes)
    if own is not None:
        return own
    if known is not None:
        found = known.get(event.exposure_id)
        if found is not None:
            return found
    if use_otel_ids and event.trace_id:
        return event.trace_id, event.span_id
    return fallback_trace_id(event.exposure_id), None


def exposure_target(event: ExposureEvent) -> Target | None:
    """The trace an exposure's attributes name, or None."""
    return _target_in(event.attributes)


def _target_in(attributes: Mapping[str, Any]) -> Target | None:
    trace = attributes.get(TRACE_ID_ATTRIBUTE)
    if not isinstance(trace, str) or not trace.strip():
        return None
    observation = attributes.get(OBSERVATION_ID_ATTRIBUTE)
    if not isinstance(observation, str) or not observation.strip():
        observation = None
    return trace, observation


def langfuse_scores(
    event: Event,
    *,
    target: Target | None = None,
    score_prefix: str = DEFAULT_SCORE_PREFIX,
    environment: str | None = None,
) -> list[dict[str, Any]]:
    """The Langfuse score bodies for ``event`` (empty for an exposure: see the README).

    Each is ``{"id", "traceId", "observationId"?, "name", "value", "dataType", "comment"?,
    "metadata", "environment"?}``. The first, ``"<prefix>.<kind>"``, is NUMERIC: the signed
    strength ``strength * polarity`` in [-1, 1] (none when the event has no score). Extra ones:
    ``<prefix>.correction.similarity`` (NUMERIC, [0, 1]), ``<prefix>.feedback.choice``
    (CATEGORICAL) and ``<prefix>.outcome.success`` (BOOLEAN, 1 or 0). Ids are the signalkit
    event id (``"<id>.<measure>"`` for the extra ones): a retried delivery overwrites the same
    score instead of counting it twice. ``target`` defaults to :func:`score_target`.
    """
    if isinstance(event, ExposureEvent):
        return []
    trace_id, observation_id = target if target is not None else score_target(event)
    base = f"{score_prefix}.{event.kind}"
    scores: list[dict[str, Any]] = []

    def add(
        suffix: str,
        value: float | str,
        data_type: DataType,
        comment: str | None,
        meta: dict[str, Any],
    ) -> None:
        score_id = event.id if not suffix else f"{event.id}.{suffix}"
        body: dict[str, Any] = {"id": score_id, "traceId": trace_id}
        if observation_id is not None:
            body["observationId"] = observation_id
        body["name"] = base if not suffix else f"{base}.{suffix}"
        body["value"] = value
        body["dataType"] = data_type
        if comment:
            body["comment"] = comment[:COMMENT_MAX_CHARS]
        body["metadata"] = meta
        if environment is not None:
            body["environment"] = environment
        scores.append(body)

    small = {
        PREFIX + "event_id": event.id,
        PREFIX + "exposure_id": event.exposure_id,
        PREFIX + "kind": event.kind,
    }
    if event.score is not None:
        signed = event.score.strength * event.score.polarity
        add("", round(signed, 6) + 0.0, "NUMERIC", _comment(event), signal_properties(event))
    if isinstance(event, CorrectionEvent):
        add("similarity", float(event.similarity), "NUMERIC", None, dict(small))
    elif isinstance(event, FeedbackEvent) and event.choice:
        add("choice", event.choice, "CATEGORICAL", None, dict(small))
    elif isinstance(event, OutcomeEvent) and event.success is not None:
        add("success", 1.0 if event.success else 0.0, "BOOLEAN", None, dict(small))
    return scores


def _comment(event: Event) -> str | None:
    """A short line a person reads in Langfuse's score list."""
    if isinstance(event, FeedbackEvent):
        return event.comment
    if isinstance(event, ActionEvent):
        return f"action: {event.action}"
    if isinstance(event, ToggleEvent):
        return f"toggle: {event.state}"
    if isinstance(event, CorrectionEvent):
        return f"correction: edit distance {event.edit_distance}, similarity {event.similarity:.2f}"
    if isinstance(event, OutcomeEvent):
        return f"outcome: {event.name}"
    return None


def check_environment(owner: str, value: object) -> str | None:
    """``value`` if it is a Langfuse environment name (or None); else :class:`ConfigError`."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= _ENV_MAX_CHARS
        or not all(c in "abcdefghijklmnopqrstuvwxyz0123456789-_" for c in value)
        or value.startswith("langfuse")
    ):
        raise ConfigError(
            f"{owner}.environment: must be 1 to {_ENV_MAX_CHARS} lowercase letters, digits, "
            f"'-' or '_', not starting with 'langfuse' (Langfuse's rule), got {value!r:.60}"
        )
    return value


def check_score_prefix(owner: str, value: object) -> str:
    """``value`` if it is a usable score-name prefix; else :class:`ConfigError`."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 100
        or not value.isprintable()
    ):
        raise ConfigError(
            f"{owner}.score_prefix: must be a printable str of 1 to 100 characters, such as "
            f"'signalkit', got {value!r:.60}"
        )
    return value
