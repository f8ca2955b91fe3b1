"""The client: configuration, the signal methods, flush/shutdown and stats.

Every recording method does only cheap work on the caller's thread — check the input, build
the frozen event, score it, run the processors, append it to the queue — and never raises
into the caller unless ``strict=True``: bad input is counted in :attr:`Client.stats`, warned
about at a limited rate, and the call returns ``None``.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from rapidfuzz.distance import Levenshtein

from . import _ids
from ._context import _NO_SUBJECT, _subject
from ._errors import ConfigError, InvalidEvent, InvalidToken
from ._instrument import Exposure, recommendation_decorator
from ._stats import Counters, Stats, logger
from ._worker import Delivery, FullPolicy, Pipeline
from .events import (
    _FIELDS_SET,
    SCHEMA_VERSION,
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    Item,
    ModelRef,
    OutcomeEvent,
    Score,
    Subject,
    ToggleEvent,
    _construct,
    _new,
    _set_dict,
    _set_extra,
    _set_fields_set,
    _set_private,
)
from .exporters.base import Exporter
from .exporters.jsonl import DEFAULT_DIR, JsonlExporter
from .scoring import (
    DEFAULT_POLICY,
    Scorer,
    ScoringPolicy,
    score_action,
    score_correction,
    score_exposure,
    score_feedback,
    score_outcome,
    score_toggle,
)
from .tokens import PREFIX, TokenClaims, TokenSigner

__all__ = ["Client", "Processor", "Target"]

Target = Exposure | str
"""What a signal refers to: an :class:`Exposure` handle, its token, or its bare id."""
Processor = Callable[[Event], Event | None]
"""A step run on every event before it is queued: return the event (or a changed copy), or
``None`` to drop it on purpose (counted as ``filtered``)."""

E = TypeVar("E", bound=Event)

_EMPTY_SUBJECT = _NO_SUBJECT
_EMPTY_MODEL = ModelRef()
_NAME_MAX = 200
_ATTR_MAX_KEYS = 64
_ATTR_VALUE_MAX = 1024
_EVENT_OVERHEAD_BYTES = 600  # JSON of an event with empty strings, measured in the tests
_RECENT_MAX = 16_384

_raise_rejections: ContextVar[bool] = ContextVar("signalkit_raise_rejections", default=False)
"""Set by callers that must report why a signal was refused (the browser relay) without
making the whole client strict; read only on the rejection path, so the hot path pays nothing."""
_HEX = "0123456789abcdef"


@dataclass(slots=True)
class _Ref:
    """What a signal needs to know about its exposure."""

    exposure_id: str
    shown_at_ms: int | None
    model: ModelRef
    subject: Subject | None
    trace_id: str | None
    span_id: str | None


_Recent = tuple[int, ModelRef, Subject, str | None, str | None]
"""What the client remembers of a recent exposure: a _Ref without its id."""


def _ref_of(exp: Exposure) -> _Ref:
    ref = _Ref(exp.id, exp.shown_at_ms, exp.model, exp.subject, exp.trace_id, exp.span_id)
    exp._ref = ref  # the time shown is now fixed, and the rest never changes
    return ref


def _check_utf8(field: str, value: str) -> None:
    """Reject text that cannot be encoded (lone surrogates): it would poison a whole batch."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidEvent(field, f"is not valid Unicode text ({exc.reason})") from None


def _check_name(field: str, value: object, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a str, got {type(value).__name__}")
    if not value or len(value) > _NAME_MAX:
        raise InvalidEvent(field, f"must be 1 to {_NAME_MAX} characters, got {len(value)}")
    _check_utf8(field, value)
    return value


def _check_number(field: str, value: object, *, minimum: float | None = None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(field, f"must be a number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        raise InvalidEvent(field, "is too large for a float") from None
    if not math.isfinite(v):
        raise InvalidEvent(field, f"must be finite, got {v}")
    if minimum is not None and v < minimum:
        raise InvalidEvent(field, f"must be >= {minimum:g}, got {v:g}")
    return v


def _check_attributes(attributes: object) -> tuple[dict[str, Any], int]:
    """Return a private copy of valid attributes and their approximate JSON size."""
    if attributes is None:
        return {}, 0
    if not isinstance(attributes, dict):
        raise InvalidEvent("attributes", f"must be a dict, got {type(attributes).__name__}")
    if len(attributes) > _ATTR_MAX_KEYS:
        raise InvalidEvent("attributes", f"at most {_ATTR_MAX_KEYS} keys, got {len(attributes)}")
    size = 0
    for key, value in attributes.items():
        if not isinstance(key, str) or not key or len(key) > _NAME_MAX:
            raise InvalidEvent(
                "attributes", f"keys must be str of 1-{_NAME_MAX} chars: {key!r:.60}"
            )
        _check_utf8("attributes", key)
        if isinstance(value, str):
            if len(value) > _ATTR_VALUE_MAX:
                raise InvalidEvent(
                    f"attributes.{key}", f"at most {_ATTR_VALUE_MAX} characters, got {len(value)}"
                )
            _check_utf8(f"attributes.{key}", value)
            size += len(value)
        elif isinstance(value, bool | int):
            if not isinstance(value, bool) and not -(2**63) <= value < 2**63:
                raise InvalidEvent(f"attributes.{key}", "int out of 64-bit range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidEvent(f"attributes.{key}", f"must be finite, got {value}")
        else:
            raise InvalidEvent(
                f"attributes.{key}",
                f"must be str, int, float or bool (flat scalars), got {type(value).__name__}",
            )
        size += len(key) + 24
    return dict(attributes), size


def _as_id(value: str) -> str | None:
    """The canonical (lower-case) form of a UUID string, or None if it is not one."""
    if len(value) != 36 or value[8] != "-" or value[13] != "-" or value[23] != "-":
        return None
    lowered = value.lower()
    digits = lowered.replace("-", "")
    if len(digits) != 32 or digits.strip(_HEX) or lowered[18] != "-":
        return None
    return lowered


class Client:
    """Records signals for one service and delivers them to its exporters.

    With no ``exporters``, events go to the embedded default: JSON Lines under
    ``./.signalkit/events.jsonl`` (``SIGNALKIT_DIR`` moves it). See ``docs/api.md`` for every
    option. A client is safe to share between threads and asyncio tasks.
    """

    def __init__(
        self,
        service: str | None = None,
        *,
        exporters: Sequence[Exporter] | None = None,
        secret: str | bytes | Sequence[str | bytes] | None = None,
        policy: ScoringPolicy | None = None,
        scorer: Scorer | None = None,
        processors: Sequence[Processor] = (),
        spool: str | os.PathLike[str] | None = None,
        spool_fsync: Literal["always", "interval", "never"] = "interval",
        spool_max_bytes: int = 256 * 1024 * 1024,
        strict: bool = False,
        token_max_age_s: float = 30 * 86_400,
        max_text_chars: int = 32_000,
        max_queue: int = 10_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        batch_size: int = 1000,
        flush_interval_s: float = 1.0,
        on_queue_full: FullPolicy = "drop_newest",
        exit_timeout_s: float = 2.0,
        warn_interval_s: float = 60.0,
        delivery: Delivery = "background",
    ) -> None:
        service = service or os.environ.get("SIGNALKIT_SERVICE") or "default"
        if not isinstance(service, str) or len(service) > _NAME_MAX:
            raise ConfigError(f"service: must be a str of at most {_NAME_MAX} characters")
        if policy is not None and not isinstance(policy, ScoringPolicy):
            raise ConfigError("policy: must be a signalkit.ScoringPolicy")
        if scorer is not None and not callable(scorer):
            raise ConfigError("scorer: must be a callable (event, policy) -> Score | None")
        for i, p in enumerate(processors):
            if not callable(p):
                raise ConfigError(f"processors[{i}]: must be a callable (event) -> event | None")
        if spool is not None and not isinstance(spool, str | os.PathLike):
            raise ConfigError("spool: a directory path (str or Path), e.g. '.signalkit/spool'")
        if spool_fsync not in ("always", "interval", "never"):
            raise ConfigError("spool_fsync: must be 'always', 'interval' or 'never'")
        for name, value in (
            ("max_text_chars", max_text_chars),
            ("max_queue", max_queue),
            ("max_queue_bytes", max_queue_bytes),
            ("batch_size", batch_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be an int >= 1, got {value!r}")
        if not flush_interval_s > 0 or not exit_timeout_s >= 0:
            raise ConfigError("flush_interval_s must be > 0 and exit_timeout_s >= 0")
        if delivery not in ("background", "sync"):
            raise ConfigError("delivery: must be 'background' or 'sync' (serverless)")
        if on_queue_full not in ("drop_newest", "drop_oldest"):
            raise ConfigError("on_queue_full: must be 'drop_newest' or 'drop_oldest'")
        if exporters is None:
            base = Path(os.environ.get("SIGNALKIT_DIR") or DEFAULT_DIR)
            exporters = [JsonlExporter(base / "events.jsonl")]
        for i, exporter in enumerate(exporters):
            if not callable(getattr(exporter, "export", None)):
                raise ConfigError(f"exporters[{i}]: has no export(batch) method")

        self.service = service
        self.strict = strict
        self.policy = policy or DEFAULT_POLICY
        self.scorer = scorer
        self.processors: list[Processor] = list(processors)
        self.max_text_chars = max_text_chars
        self._signer = TokenSigner(secret, max_age_s=token_max_age_s)
        self._counters = Counters(warn_interval_s)
        self._pipeline = Pipeline(
            exporters,
            self._counters,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            batch_size=batch_size,
            interval_s=flush_interval_s,
            on_full=on_queue_full,
            exit_timeout_s=exit_timeout_s,
            delivery=delivery,
            spool=None if spool is None else Path(spool),
            spool_options={"fsync": spool_fsync, "max_bytes": spool_max_bytes},
        )
        self._models: dict[tuple[str | None, str | None, str | None], ModelRef] = {}
        self._surfaces: set[str] = set()
        self._token_refs: dict[str, _Ref] = {}
        # exposure ids are unique: a dict plus the order of arrival evicts in O(1), cheaper
        # than an OrderedDict on the decorator's path
        self._recent: dict[str, _Recent] = {}
        self._recent_order: deque[str] = deque()
        self._expanded: OrderedDict[tuple[str, str | None], int] = OrderedDict()
        self._new_producer()
        _live.add(self)
        if self._signer.ephemeral:
            logger.debug("signalkit: no SIGNALKIT_SECRET; tokens verify only in this process")

    def _new_producer(self) -> None:
        self.producer_id = secrets.token_hex(8)
        # Each signal's fields start as a copy of its kind's template (constants filled in,
        # the rest None): copying a dict with the same keys is much cheaper than building one.
        self._templates: dict[type[BaseModel], dict[str, Any]] = {}
        for cls in (ActionEvent, CorrectionEvent, ToggleEvent, OutcomeEvent, FeedbackEvent):
            template: dict[str, Any] = dict.fromkeys(cls.model_fields)
            template["schema_version"] = SCHEMA_VERSION
            template["service"] = self.service
            template["producer_id"] = self.producer_id
            template["seq"] = 0
            template["kind"] = cls.model_fields["kind"].default
            self._templates[cls] = template

    def __repr__(self) -> str:
        return (
            f"Client(service={self.service!r}, exporters={self.exporters!r}, strict={self.strict})"
        )

    @property
    def exporters(self) -> list[Exporter]:
        return self._pipeline.exporters

    # -- public: instrumentation ---------------------------------------------------------

    def recommendation(
        self,
        surface: str,
        *,
        model: str | None = None,
        model_version: str | None = None,
        model_variant: str | None = None,
        attributes: dict[str, Any] | None = None,
        items: Callable[[Any], Iterable[Any]] | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        session_id: str | None = None,
        tenant_id: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate an AI call (sync or async): each call records an exposure.

        The result is returned unchanged; ``items`` may extract the impression list from it.
        After the call, :func:`signalkit.current_exposure` is the exposure just recorded.
        """
        subject = {
            "user_id": user_id,
            "anonymous_id": anonymous_id,
            "session_id": session_id,
            "tenant_id": tenant_id,
        }
        return recommendation_decorator(
            lambda: self,
            surface,
            model,
            model_version,
            model_variant,
            attributes,
            items,
            subject,
        )

    def exposure(
        self,
        surface: str,
        *,
        model: str | None = None,
        model_version: str | None = None,
        model_variant: str | None = None,
        attributes: dict[str, Any] | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        session_id: str | None = None,
        tenant_id: str | None = None,
        at: datetime | None = None,
    ) -> Exposure:
        """Open an exposure; use as ``with`` or ``async with``. Recorded when the block ends
        without an exception. Set ``exp.items`` inside the block for an impression list.

        ``at`` backfills a historical exposure: it is the time the output was shown."""
        valid = True
        at_ms = None
        ref = _EMPTY_MODEL
        subject = _EMPTY_SUBJECT
        try:
            _check_name("surface", surface)
            ref = self._model_ref(model, model_version, model_variant)
            subject = self._subject(user_id, anonymous_id, session_id, tenant_id, None)
            at_ms = None if at is None else self._ts_ms(at)
        except InvalidEvent as exc:
            self._reject(exc)
            valid = False
        except Exception as exc:
            self._internal_error("exposure", exc)
            valid = False
        return Exposure(self, surface, ref, subject, attributes, at_ms=at_ms, valid=valid)

    def _open_exposure(
        self, surface: str, model: object, version: object, variant: object
    ) -> Exposure:
        """``exposure()`` for the decorator's usual case: subject from the context, no
        attributes, shown now. Checks stay the same; only the keyword plumbing goes."""
        try:
            if surface.__class__ is not str or surface not in self._surfaces:
                _check_name("surface", surface)
                if len(self._surfaces) < 1024:
                    self._surfaces.add(surface)
            ref = self._model_ref(model, version, variant)
        except InvalidEvent as exc:
            self._reject(exc)
            return Exposure(self, surface, _EMPTY_MODEL, _EMPTY_SUBJECT, None, valid=False)
        except Exception as exc:  # a bug of ours must not break the decorated call
            self._internal_error("exposure", exc)
            return Exposure(self, surface, _EMPTY_MODEL, _EMPTY_SUBJECT, None, valid=False)
        return Exposure(self, surface, ref, _subject.get() or _EMPTY_SUBJECT, None)

    def _model_ref(self, name: object, version: object, variant: object) -> ModelRef:
        key = (name, version, variant)
        try:
            ref = self._models.get(key)  # type: ignore[arg-type]
        except TypeError:  # unhashable (a list...): not a name, and _check_name says so
            ref = None
        if ref is None:
            values = {
                "name": _check_name("model", name, required=False),
                "version": _check_name("model_version", version, required=False),
                "variant": _check_name("model_variant", variant, required=False),
            }
            ref = _construct(ModelRef, values)
            if len(self._models) < 1024:  # model references are few; don't grow on a bug
                self._models[key] = ref  # type: ignore[index]
        return ref

    # -- public: signals -----------------------------------------------------------------

    def action(
        self,
        exposure: Target,
        action: str = "accepted",
        *,
        item_id: str | None = None,
        at: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> ActionEvent | None:
        """Record what the user did with an exposure: ``accepted``, ``clicked``, ``copied``,
        ``dismissed``, ``rejected`` (or your own verb). Time-to-action comes from the exposure."""
        try:
            if (
                action.__class__ is not str
                or not 0 < len(action) <= _NAME_MAX
                or not action.isascii()
            ):
                _check_name("action", action)  # raises if it is not a valid name
            if item_id is not None:
                _check_name("item_id", item_id)
            v, ttl, _, size = self._common(ActionEvent, exposure, at, attributes, user_id)
            v["action"] = action
            v["item_id"] = item_id
            v["time_to_action_ms"] = ttl
            return self._emit(ActionEvent, v, size, score_action(action, ttl, self.policy))
        except (InvalidEvent, InvalidToken) as exc:
            self._reject(exc)
            return None
        except Exception as exc:
            self._internal_error("action", exc)
            return None

    def correction(
        self,
        exposure: Target,
        original: str,
        corrected: str,
        *,
        at: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> CorrectionEvent | None:
        """Record that the user edited the AI output (``original``) into ``corrected``.

        Edit distance and similarity (Levenshtein, via rapidfuzz) grade the correction.
        """
        try:
            limit = self.max_text_chars
            if not (original.__class__ is str and len(original) <= limit and original.isascii()):
                self._check_text("original", original, allow_empty=True)
            if not (corrected.__class__ is str and len(corrected) <= limit and corrected.isascii()):
                self._check_text("corrected", corrected, allow_empty=True)
            v, ttl, _, size = self._common(CorrectionEvent, exposure, at, attributes, user_id)
            distance = Levenshtein.distance(original, corrected)
            longest = max(len(original), len(corrected))
            similarity = 1.0 - distance / longest if longest else 1.0
            v["original"] = original
            v["corrected"] = corrected
            v["edit_distance"] = distance
            v["similarity"] = round(similarity, 6)
            v["time_to_action_ms"] = ttl
            size += len(original) + len(corrected)
            return self._emit(CorrectionEvent, v, size, score_correction(similarity, self.policy))
        except (InvalidEvent, InvalidToken) as exc:
            self._reject(exc)
            return None
        except Exception as exc:
            self._internal_error("correction", exc)
            return None

    def toggle(
        self,
        exposure: Target,
        state: Literal["expanded", "collapsed"],
        *,
        element: str | None = None,
        dwell_ms: float | None = None,
        at: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> ToggleEvent | None:
        """Record an expand or collapse of a suggestion (or of ``element`` within it).

        For a collapse, ``dwell_ms`` (how long it stayed open) is taken from the matching
        expand recorded by this process when not given.
        """
        try:
            if state not in ("expanded", "collapsed"):
                raise InvalidEvent("state", f"must be 'expanded' or 'collapsed', got {state!r:.40}")
            if element is not None:
                _check_name("element", element)
            dwell = None if dwell_ms is None else _check_number("dwell_ms", dwell_ms, minimum=0.0)
            v, ttl, ts_ms, size = self._common(ToggleEvent, exposure, at, attributes, user_id)
            key = (v["exposure_id"], element)
            if state == "expanded":
                expanded = self._expanded
                expanded[key] = ts_ms
                if len(expanded) > _RECENT_MAX:
                    self._forget_oldest(expanded)
            elif dwell is None:
                opened = self._expanded.pop(key, None)
                if opened is not None and ts_ms >= opened:
                    dwell = float(ts_ms - opened)
            v["state"] = state
            v["element"] = element
            v["dwell_ms"] = dwell
            v["time_to_action_ms"] = ttl
            return self._emit(ToggleEvent, v, size, score_toggle(state, dwell, self.policy))
        except (InvalidEvent, InvalidToken) as exc:
            self._reject(exc)
            return None
        except Exception as exc:
            self._internal_error("toggle", exc)
            return None

    def outcome(
        self,
        exposure: Target,
        name: str,
        *,
        value: float | None = None,
        success: bool | None = None,
        at: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> OutcomeEvent | None:
        """Record a downstream outcome (``purchase``, ``ticket_resolved``...) of an exposure.

        Its strength decays with the delay since the exposure (``outcome_half_life_ms``)."""
        try:
            if name.__class__ is not str or not 0 < len(name) <= _NAME_MAX or not name.isascii():
                _check_name("name", name)  # raises if it is not a valid name
            val = value
            if val is not None and not (val.__class__ is float and math.isfinite(val)):
                val = _check_number("value", value)
            if success is not None and not isinstance(success, bool):
                raise InvalidEvent(
                    "success", f"must be a bool or None, got {type(success).__name__}"
                )
            v, delay, _, size = self._common(OutcomeEvent, exposure, at, attributes, user_id)
            v["name"] = name
            v["value"] = val
            v["success"] = success
            v["delay_ms"] = delay
            return self._emit(OutcomeEvent, v, size, score_outcome(success, delay, self.policy))
        except (InvalidEvent, InvalidToken) as exc:
            self._reject(exc)
            return None
        except Exception as exc:
            self._internal_error("outcome", exc)
            return None

    def feedback(
        self,
        exposure: Target,
        rating: float | None = None,
        *,
        scale: Sequence[float] = (-1.0, 1.0),
        choice: str | None = None,
        comment: str | None = None,
        at: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> FeedbackEvent | None:
        """Record explicit feedback: a ``rating`` on ``scale`` (thumbs: -1/+1 on (-1, 1);
        stars: 1-5 on (1, 5)), a ``choice`` among options, and/or a ``comment``."""
        try:
            r = _check_number("rating", rating)
            if (
                not isinstance(scale, tuple | list)
                or len(scale) != 2
                or _check_number("scale", scale[0]) is None
                or _check_number("scale", scale[1]) is None
                or not scale[0] < scale[1]
            ):
                raise InvalidEvent(
                    "scale", f"must be a (worst, best) pair with worst < best: {scale!r:.60}"
                )
            lo, hi = float(scale[0]), float(scale[1])
            if r is not None and not lo <= r <= hi:
                raise InvalidEvent("rating", f"{r:g} is outside the scale {lo:g}..{hi:g}")
            _check_name("choice", choice, required=False)
            if comment is not None:
                self._check_text("comment", comment, allow_empty=False)
            if r is None and choice is None and comment is None:
                raise InvalidEvent("rating", "give a rating, a choice or a comment")
            v, ttl, _, size = self._common(FeedbackEvent, exposure, at, attributes, user_id)
            v["rating"] = r
            v["scale"] = (lo, hi)
            v["choice"] = choice
            v["comment"] = comment
            v["time_to_action_ms"] = ttl
            size += len(comment or "")
            score = score_feedback(r, (lo, hi), choice, comment, self.policy)
            return self._emit(FeedbackEvent, v, size, score)
        except (InvalidEvent, InvalidToken) as exc:
            self._reject(exc)
            return None
        except Exception as exc:
            self._internal_error("feedback", exc)
            return None

    def verify(self, token: str, *, at: datetime | None = None) -> TokenClaims:
        """Check a token; return its claims or raise :class:`signalkit.InvalidToken`."""
        now_ms = None if at is None else self._ts_ms(at)
        return self._signer.verify(token, now_ms)

    # -- public: delivery ----------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver everything recorded so far; True if done within ``timeout`` seconds."""
        return self._pipeline.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """:meth:`flush` for asyncio code: waits in a thread, never blocks the loop."""
        import asyncio  # only asyncio code pays for importing it

        return await asyncio.to_thread(self.flush, timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop delivery; later recording calls are counted no-ops."""
        return self._pipeline.shutdown(timeout)

    @property
    def stats(self) -> Stats:
        """A snapshot of what this client recorded, rejected, dropped and delivered."""
        pipeline = self._pipeline
        return self._counters.snapshot(
            pipeline.seq,
            pipeline.exported,
            pipeline.pending,
            pipeline.lane_pending(),
            pipeline.lane_recovered(),
        )

    # -- internals -----------------------------------------------------------------------

    def _after_fork(self) -> None:
        # The parent delivers what it had queued; the child starts a new producer with its own
        # seq and counters, so a sink never confuses the two streams.
        self._counters.reset()
        self._new_producer()
        self._recent = {}
        self._recent_order = deque()
        self._expanded = OrderedDict()
        self._token_refs = {}

    def _check_text(self, field: str, value: object, *, allow_empty: bool) -> None:
        if not isinstance(value, str):
            raise InvalidEvent(field, f"must be a str, got {type(value).__name__}")
        if len(value) > self.max_text_chars:
            raise InvalidEvent(
                field,
                f"{len(value)} characters is over max_text_chars={self.max_text_chars}",
                reason="too_large",
            )
        if not allow_empty and not value:
            raise InvalidEvent(field, "must not be empty")
        _check_utf8(field, value)

    def _ts_ms(self, at: object) -> int:
        if not isinstance(at, datetime):
            raise InvalidEvent("at", f"must be a datetime, got {type(at).__name__}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidEvent("at", "must be timezone-aware, e.g. datetime.now(timezone.utc)")
        ms = int(at.timestamp() * 1000)
        if ms < 0:
            raise InvalidEvent(
                "at", f"must be after 1970-01-01 (UUIDv7 time), got {at.isoformat()}"
            )
        return ms

    def _subject(
        self,
        user_id: object,
        anonymous_id: object,
        session_id: object,
        tenant_id: object,
        fallback: Subject | None,
    ) -> Subject:
        ctx = _subject.get() or fallback or _EMPTY_SUBJECT
        if user_id is None and anonymous_id is None and session_id is None and tenant_id is None:
            return ctx
        return Subject.model_construct(
            user_id=_check_name("user_id", user_id, required=False) or ctx.user_id,
            anonymous_id=_check_name("anonymous_id", anonymous_id, required=False)
            or ctx.anonymous_id,
            session_id=_check_name("session_id", session_id, required=False) or ctx.session_id,
            tenant_id=_check_name("tenant_id", tenant_id, required=False) or ctx.tenant_id,
        )

    def _resolve(self, target: object, ts_ms: int) -> _Ref:
        if isinstance(target, Exposure):
            return target._ref or _ref_of(target)
        if isinstance(target, str):
            if target.startswith(PREFIX):
                return self._ref_from_token(target, ts_ms)
            exposure_id = _as_id(target)
            if exposure_id is not None:
                known = self._known(exposure_id)
                if known is not None:
                    return known
                return _Ref(exposure_id, None, _EMPTY_MODEL, None, None, None)
        if isinstance(target, str):
            what = (
                "an empty string (the token of a rejected exposure?)"
                if not target
                else (f"{target[:40]!r}, neither a token ({PREFIX}...) nor an exposure id (a UUID)")
            )
            raise InvalidEvent("exposure", f"got {what}")
        raise InvalidEvent(
            "exposure",
            f"expected an Exposure, a token ({PREFIX}...) or an exposure id, got "
            f"{type(target).__name__}",
        )

    def _known(self, exposure_id: str) -> _Ref | None:
        """What this process remembers of a recent exposure."""
        known = self._recent.get(exposure_id)
        return None if known is None else _Ref(exposure_id, *known)

    def _common(
        self, cls: type[BaseModel], target: object, at: object, attributes: object, user_id: object
    ) -> tuple[dict[str, Any], float | None, int, int]:
        """Check the arguments every signal shares.

        Returns the event's fields (the common ones set, the rest from the kind's template),
        the milliseconds since the exposure was shown (None if unknown), the event's time and
        its size estimate.

        The usual call (a handle or token, no ``at``, no attributes, no ``user_id``) takes the
        short path on every step: this runs on the caller's thread for every signal.
        """
        if self._pipeline._closed:
            raise InvalidEvent("client", "recording after shutdown()", reason="after_shutdown")
        if at is None:
            ts_ms, event_id, ts = _ids.stamp()
        else:
            ts_ms = self._ts_ms(at)
            event_id = _ids.new_id(ts_ms * 1_000_000)
            ts = datetime.fromtimestamp(ts_ms / 1000, UTC)
        if target.__class__ is Exposure:
            ref = target._ref or _ref_of(target)
        elif target.__class__ is str:
            cached = self._token_refs.get(target)
            if cached is not None:  # a token verified before: only its age is checked again
                ref = cached
                signer = self._signer
                shown_at_ms: int = ref.shown_at_ms  # type: ignore[assignment]
                if not -signer.max_skew_ms <= ts_ms - shown_at_ms <= signer.max_age_ms:
                    signer.check_age(shown_at_ms, ts_ms)  # raises, naming why
            elif target.startswith(PREFIX):
                ref = self._ref_from_token(target, ts_ms)
            else:
                ref = self._resolve(target, ts_ms)
        else:
            ref = self._resolve(target, ts_ms)
        if attributes is None:
            attrs: dict[str, Any] = {}
            size = _EVENT_OVERHEAD_BYTES
        else:
            attrs, size = _check_attributes(attributes)
            size += _EVENT_OVERHEAD_BYTES
        if user_id is None:
            subject = _subject.get() or ref.subject or _EMPTY_SUBJECT
        else:
            subject = self._subject(user_id, None, None, None, ref.subject)
        trace_id, span_id = ref.trace_id, ref.span_id
        if trace_id is None and "opentelemetry.trace" in sys.modules:
            trace_id, span_id = self._trace_ids()
        elapsed = None
        shown = ref.shown_at_ms
        if shown is not None:
            ms = ts_ms - shown
            if ms < 0:
                if -ms > self._signer.max_skew_ms:
                    raise InvalidEvent("at", f"is {-ms / 1000:.0f} s before the exposure was shown")
                ms = 0  # clock skew between processes: the signal came right after
            elapsed = float(ms)
        values = self._templates[cls].copy()
        values["id"] = event_id
        values["ts"] = ts
        values["exposure_id"] = ref.exposure_id
        values["subject"] = subject
        values["model"] = ref.model
        values["trace_id"] = trace_id
        values["span_id"] = span_id
        values["attributes"] = attrs
        return values, elapsed, ts_ms, size

    def _ref_from_token(self, token: str, ts_ms: int) -> _Ref:
        signer = self._signer
        verified = signer._cache.get(token)  # e.g. by the relay's verify() just before
        if verified is not None:
            exposure_id, shown_at_ms, model = (
                verified.exposure_id,
                verified.shown_at_ms,
                verified.model,
            )
        else:  # not kept by the signer: the ref made here is cached instead
            exposure_id, shown_at_ms, model, _ = signer._claims(token)
        signer.check_age(shown_at_ms, ts_ms)
        known = self._recent.get(exposure_id)
        if known is None:
            ref = _Ref(exposure_id, shown_at_ms, model, None, None, None)
        else:  # an exposure of this process: its subject and trace too
            ref = _Ref(exposure_id, shown_at_ms, model, known[2], known[3], known[4])
        if len(self._token_refs) >= 4096:
            self._token_refs.clear()
        self._token_refs[token] = ref
        return ref

    def _record_exposure(self, exp: Exposure) -> bool:
        """Record a finished exposure; False if it was rejected (counted).

        Its inputs are checked and copied here, on the caller's thread. Unless a custom scorer
        or a processor needs the event now, the frozen ``ExposureEvent`` itself is built from
        the handle by the dispatcher (or by the first read of ``exp.event``): the decorator's
        cost to the host stays a few microseconds.
        """
        try:
            if exp._latency_ms is None:  # the call (or block) ends now: the output is shown
                exp._latency_ms = (time.perf_counter() - exp._started) * 1000
            if not exp.valid:
                return False
            if self._pipeline._closed:
                raise InvalidEvent("client", "recording after shutdown()", reason="after_shutdown")
            if exp.attributes is None:
                attrs: dict[str, Any] = {}
                size = _EVENT_OVERHEAD_BYTES
            else:
                attrs, size = _check_attributes(exp.attributes)
                size += _EVENT_OVERHEAD_BYTES
            exp.attributes = attrs
            if exp.items:
                items = exp.items = self._items(exp.items)
                size += 64 * len(items)
            else:
                exp.items = ()
            shown = exp._shown_at_ms
            if shown is None:  # fix the time shown, unless its token already did
                shown = exp._shown_at_ms = time.time_ns() // 1_000_000
            # a tuple, not the handle: evicting it later must not free an event here (and a
            # tuple is ten times cheaper to make than a _Ref; _known() makes one when asked)
            self._recent[exp.id] = (shown, exp.model, exp.subject, exp.trace_id, exp.span_id)
            order = self._recent_order
            order.append(exp.id)
            if len(order) > _RECENT_MAX:
                # not contextlib.suppress: this runs on most calls, and a try block is free
                try:  # noqa: SIM105
                    self._recent.pop(order.popleft(), None)
                except IndexError:  # another thread evicted the last one
                    pass
            if self.scorer is None and not self.processors:
                if size > self._pipeline.max_queue_bytes:
                    raise InvalidEvent("items", f"about {size} bytes: too large", "too_large")
                exp._recorded = True
                self._pipeline.submit(exp, size)
                return True
            event = self._emit(
                ExposureEvent, self._exposure_values(exp), size, score_exposure(self.policy)
            )
            if event is None:
                return False
            exp._event = event
            exp._recorded = True
            return True
        except (InvalidEvent, InvalidToken) as exc:
            self._reject(exc)
            return False
        except Exception as exc:
            self._internal_error("exposure", exc)
            return False

    def _exposure_values(self, exp: Exposure) -> dict[str, Any]:
        """The fields of a recorded exposure handle's event (its inputs already checked)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "id": exp.id,
            "ts": datetime.fromtimestamp(exp.shown_at_ms / 1000, UTC),
            "service": self.service,
            "exposure_id": exp.id,
            "producer_id": self.producer_id,
            "seq": exp._seq,
            "subject": exp.subject,
            "model": exp.model,
            "trace_id": exp.trace_id,
            "span_id": exp.span_id,
            "attributes": exp.attributes,
            "score": None,
            "kind": "exposure",
            "surface": exp.surface,
            "items": exp.items,
            "latency_ms": exp._latency_ms,
        }

    def _exposure_event(self, exp: Exposure, score: Score) -> ExposureEvent:
        """The frozen event of a recorded exposure handle (its inputs already checked)."""
        values = self._exposure_values(exp)
        values["score"] = score
        event: ExposureEvent = _construct(ExposureEvent, values)
        return event

    @staticmethod
    def _items(raw: Iterable[Any]) -> tuple[Item, ...]:
        if not raw:
            return ()
        if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
            raise InvalidEvent("items", "must be a list of ids or signalkit.Item")
        out: list[Item] = []
        for i, entry in enumerate(raw):
            if isinstance(entry, Item):
                out.append(
                    entry
                    if entry.position is not None
                    else entry.model_copy(update={"position": i})
                )
            elif isinstance(entry, str | int) and not isinstance(entry, bool):
                out.append(
                    Item.model_construct(id=str(entry), position=i, propensity=None, score=None)
                )
            else:
                raise InvalidEvent(
                    f"items[{i}]", f"must be an id (str/int) or Item, got {type(entry).__name__}"
                )
            if len(out) > 1000:
                raise InvalidEvent("items", "at most 1000 items per exposure", reason="too_large")
        return tuple(out)

    @staticmethod
    def _forget_oldest(store: OrderedDict[Any, Any]) -> None:
        try:  # noqa: SIM105 - no context manager object on the hot path
            store.popitem(last=False)
        except KeyError:  # another thread evicted it first
            pass

    def _emit(self, cls: type[E], values: dict[str, Any], size: int, score: Score) -> E | None:
        """Build the event from checked ``values``, score it, process it and queue it.

        ``score`` is the policy's; a custom scorer may replace it.
        """
        pipeline = self._pipeline
        if size > pipeline.max_queue_bytes:
            raise InvalidEvent(
                "event",
                f"about {size} bytes, more than the whole queue budget "
                f"(max_queue_bytes={pipeline.max_queue_bytes})",
                reason="too_large",
            )
        # events._construct, inlined: this runs for every signal
        event: E = _new(cls)
        _set_dict(event, "__dict__", values)
        _set_fields_set(event, _FIELDS_SET[cls])
        _set_extra(event, None)
        _set_private(event, None)
        if self.scorer is None:
            values["score"] = score  # not yet published: still ours to set
        else:  # the scorer sees the event before it is scored
            values["score"] = self._custom_score(event) or score
        if self.processors:
            processed = self._process(event)
            if processed is None:
                return None
            event = processed
        if not pipeline.submit(event, size) and pipeline._closed:
            self._counters.drop("after_shutdown", 1, "recorded after shutdown()")
        return event

    def _custom_score(self, event: Event) -> Score | None:
        assert self.scorer is not None
        try:
            s = self.scorer(event, self.policy)
            if s is not None and not isinstance(s, Score):
                raise TypeError(f"returned {type(s).__name__}, not Score")
            return s
        except Exception as exc:
            if self.strict:
                raise
            self._counters.warn(
                "scorer", "signalkit: custom scorer failed (%r); used the default policy", exc
            )
            return None

    def _process(self, event: E) -> E | None:
        for processor in self.processors:
            try:
                result = processor(event)
            except Exception as exc:
                if self.strict:
                    raise
                self._counters.reject(
                    "processor_error", "processors", f"processor {processor!r} raised {exc!r}"
                )
                return None
            if result is None:
                self._counters.add("filtered")
                return None
            event = result  # type: ignore[assignment]
        return event

    def _reject(self, exc: InvalidEvent | InvalidToken) -> None:
        reason = f"token_{exc.reason}" if isinstance(exc, InvalidToken) else exc.reason
        self._counters.reject(reason, exc.field, str(exc))
        if self.strict or _raise_rejections.get():
            raise exc

    def _internal_error(self, where: str, exc: Exception) -> None:
        self._counters.reject("internal_error", where, f"{where}: internal error {exc!r}")
        if self.strict:
            raise exc

    @staticmethod
    def _trace_ids() -> tuple[str | None, str | None]:
        # Only if the application already uses OpenTelemetry: importing it is not our call.
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return None, None
        try:
            ctx = trace.get_current_span().get_span_context()
            if not ctx.is_valid:
                return None, None
            return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        except Exception:  # a broken tracer must not stop the exposure (or the host's call)
            return None, None


_live: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    _ids.reseed()
    for client in list(_live):
        client._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
