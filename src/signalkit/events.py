"""The typed signal events: frozen pydantic v2 models in a discriminated union on ``kind``.

Every event is an immutable value carrying its own derived measures (time-to-action, edit size,
dwell, delay) and its :class:`Score`, so it can be exported, stored, read back and rescored
without any other context.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "SCHEMA_VERSION",
    "ActionEvent",
    "CorrectionEvent",
    "Event",
    "EventKind",
    "ExposureEvent",
    "FeedbackEvent",
    "Item",
    "ModelRef",
    "OutcomeEvent",
    "Reason",
    "Score",
    "Subject",
    "ToggleEvent",
    "event_json_schema",
    "parse_event",
    "read_jsonl",
]

SCHEMA_VERSION = 1
"""Version of the event schema written into every event's ``schema_version``."""

Scalar: TypeAlias = str | int | float | bool
Attributes: TypeAlias = dict[str, Scalar]
EventKind: TypeAlias = Literal["exposure", "action", "correction", "toggle", "outcome", "feedback"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Reason(BaseModel):
    """One factor of a score: its name, its effect on strength, and a human explanation."""

    model_config = _FROZEN

    factor: str
    """Machine name of the factor, e.g. ``base``, ``time_to_action``, ``edit_size``."""
    effect: float
    """What the factor did to strength: the base value, or a multiplier for modifiers."""
    note: str = ""
    """Sentence a person can read: why this factor applied."""


class Score(BaseModel):
    """How far to trust an event as training signal, and which way it points."""

    model_config = _FROZEN

    strength: Annotated[float, Field(ge=0.0, le=1.0)]
    """Trust in the event as a label, in [0, 1]: 0 is noise, 1 is ground truth."""
    polarity: Annotated[float, Field(ge=-1.0, le=1.0)]
    """Whether the event endorses (+1) or rejects (-1) what was shown; 0 is neutral."""
    reasons: tuple[Reason, ...] = ()
    """The factors that produced strength and polarity, in the order they applied."""
    policy: str = ""
    """``name@version`` of the scoring policy (or the custom scorer) that produced the score."""


class Subject(BaseModel):
    """Who the exposure was shown to."""

    model_config = _FROZEN

    user_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    tenant_id: str | None = None


class ModelRef(BaseModel):
    """Which model produced what was shown."""

    model_config = _FROZEN

    name: str | None = None
    version: str | None = None
    variant: str | None = None


class Item(BaseModel):
    """One entry of an impression list.

    ``propensity`` is the probability the serving policy had of showing this item at this
    position; logged with the exposure, it lets a new policy be evaluated off-line (IPS).
    """

    model_config = _FROZEN

    id: str
    position: int | None = None
    propensity: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    score: float | None = None


class _EventBase(BaseModel):
    model_config = _FROZEN

    schema_version: int = SCHEMA_VERSION
    id: str
    """UUIDv7, time-ordered; the dedupe key every sink receives."""
    ts: datetime
    """When the event happened (UTC)."""
    service: str
    exposure_id: str
    """The exposure this event belongs to (its own id for an exposure)."""
    producer_id: str
    """Random per client and process; new after ``fork()``."""
    seq: int
    """1, 2, 3... per producer in record order: a gap means a lost event."""
    subject: Subject = Subject()
    model: ModelRef = ModelRef()
    trace_id: str | None = None
    """Hex trace id of the OpenTelemetry span current when the exposure was recorded."""
    span_id: str | None = None
    attributes: Attributes = {}
    """The product's own context: flat scalars only."""
    score: Score | None = None
    """Set on every recorded event; ``None`` only while an event is being built."""

    def to_json(self) -> bytes:
        """The event as compact JSON bytes: the line written to JSONL and sent over HTTP."""
        return self.__pydantic_serializer__.to_json(self)


class ExposureEvent(_EventBase):
    """An AI output was shown to a user: the anchor every later signal refers to."""

    kind: Literal["exposure"] = "exposure"
    surface: str
    """Where in the product it was shown, e.g. ``reply-draft``, ``search``."""
    items: tuple[Item, ...] = ()
    """The impression list, in order (empty for a single output)."""
    latency_ms: float | None = None
    """How long the AI call took, in milliseconds."""


class _SignalBase(_EventBase):
    time_to_action_ms: float | None = None
    """Milliseconds from the exposure being shown to this signal (None if unknown)."""


class ActionEvent(_SignalBase):
    """The user acted on what was shown: accepted, clicked, copied, dismissed..."""

    kind: Literal["action"] = "action"
    action: str
    item_id: str | None = None
    """Which item of the impression list the action was on, if any."""


class CorrectionEvent(_SignalBase):
    """The user edited the AI output before using it: the edited text is a label."""

    kind: Literal["correction"] = "correction"
    original: str
    corrected: str
    edit_distance: int
    """Levenshtein distance between original and corrected, in characters."""
    similarity: Annotated[float, Field(ge=0.0, le=1.0)]
    """Normalised similarity of original and corrected in [0, 1]; 1 means unchanged."""


class ToggleEvent(_SignalBase):
    """The user expanded or collapsed a suggestion or part of one."""

    kind: Literal["toggle"] = "toggle"
    state: Literal["expanded", "collapsed"]
    element: str | None = None
    dwell_ms: float | None = None
    """For a collapse: how long the element stayed expanded, in milliseconds."""


class OutcomeEvent(_EventBase):
    """A downstream result the product exists for: purchase, task done, ticket resolved."""

    kind: Literal["outcome"] = "outcome"
    name: str
    value: float | None = None
    success: bool | None = None
    delay_ms: float | None = None
    """Milliseconds from the exposure to the outcome (None if unknown)."""


class FeedbackEvent(_SignalBase):
    """Explicit feedback: a rating, a choice between options, a comment."""

    kind: Literal["feedback"] = "feedback"
    rating: float | None = None
    scale: tuple[float, float] = (-1.0, 1.0)
    """The (worst, best) of the rating scale, e.g. (-1, 1) for thumbs, (1, 5) for stars."""
    choice: str | None = None
    """The option the user chose, when asked to pick between alternatives."""
    comment: str | None = None


Event: TypeAlias = Annotated[
    ExposureEvent | ActionEvent | CorrectionEvent | ToggleEvent | OutcomeEvent | FeedbackEvent,
    Field(discriminator="kind"),
]
"""Any signalkit event; pydantic picks the class from ``kind``."""

EVENT_CLASSES: dict[str, type[_EventBase]] = {
    "exposure": ExposureEvent,
    "action": ActionEvent,
    "correction": CorrectionEvent,
    "toggle": ToggleEvent,
    "outcome": OutcomeEvent,
    "feedback": FeedbackEvent,
}

_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: bytes | str | dict[str, Any]) -> Event:
    """Validate one event from JSON (bytes, str) or a dict; raises ``pydantic.ValidationError``."""
    if isinstance(data, dict):
        return _adapter.validate_python(data)
    return _adapter.validate_json(data)


def read_jsonl(lines: Iterable[bytes | str]) -> Iterator[Event]:
    """Parse JSONL lines into events, skipping blank lines; a bad line raises with its number."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield _adapter.validate_json(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of :data:`Event` (what ``signalkit schema`` prints)."""
    schema = _adapter.json_schema(mode="serialization")
    schema["title"] = "signalkit event"
    schema["$id"] = f"https://signalkit.dev/schema/event-v{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def dumps(event: _EventBase) -> bytes:
    """Serialise an event to compact JSON (same as :meth:`to_json`)."""
    return event.__pydantic_serializer__.to_json(event)


def _construct(cls: type[BaseModel], values: dict[str, Any]) -> Any:
    """Build a model from values signalkit has already checked, skipping re-validation.

    ``values`` must hold every field. The caller's thread pays only for its own cheap checks;
    ``tests/test_events.py`` proves that every event built this way equals the same event
    validated by pydantic. The slots are set through their descriptors: the frozen model's
    ``__setattr__`` refuses, and ``object.__setattr__`` costs twice as much.
    """
    try:
        fields_set = _FIELDS_SET[cls]
    except KeyError:
        fields_set = _FIELDS_SET[cls] = set(cls.model_fields)
    obj = _new(cls)  # BaseModel has no __new__ of its own
    _set_dict(obj, "__dict__", values)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


_FIELDS_SET: dict[type[BaseModel], set[str]] = {
    cls: set(cls.model_fields) for cls in EVENT_CLASSES.values()
}
_new = object.__new__
_set_dict = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
