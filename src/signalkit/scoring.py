"""Signal-strength scoring: a policy that is data, and pure functions that apply it.

``score(event, policy)`` reads only the event's own fields (its kind and derived measures), so
any stored event can be rescored under a new policy with :func:`rescore`. The rationale for
every default number is in ``docs/scoring.md``.
"""

from __future__ import annotations

import bisect
import math
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._errors import ConfigError
from .events import (
    ActionEvent,
    CorrectionEvent,
    Event,
    ExposureEvent,
    FeedbackEvent,
    OutcomeEvent,
    Reason,
    Score,
    ToggleEvent,
    _construct,
)

__all__ = [
    "DEFAULT_POLICY",
    "ActionRule",
    "EditBand",
    "LatencyBand",
    "Scorer",
    "ScoringPolicy",
    "rescore",
    "score",
]

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Signed = Annotated[float, Field(ge=-1.0, le=1.0)]
Factor = Annotated[float, Field(ge=0.0, le=4.0)]
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ActionRule(BaseModel):
    """Base strength and polarity of one named action (``accepted``, ``clicked``...)."""

    model_config = _FROZEN
    strength: Unit
    polarity: Signed
    note: str = ""


class LatencyBand(BaseModel):
    """Multiplier on an action's strength for a time-to-action below ``below_ms``."""

    model_config = _FROZEN
    below_ms: Annotated[float, Field(gt=0)] | None
    """Upper bound (exclusive) in milliseconds; ``None`` for the last, open-ended band."""
    factor: Factor
    label: str


class EditBand(BaseModel):
    """Strength and polarity of a correction whose similarity is at least ``min_similarity``."""

    model_config = _FROZEN
    min_similarity: Unit
    strength: Unit
    polarity: Signed
    label: str


class ScoringPolicy(BaseModel):
    """The numbers scoring applies, as validated data. Load your own with :meth:`from_toml`.

    Bump ``version`` whenever a number changes: every score names ``name@version``, so
    scores made under different policies are never mixed unknowingly.
    """

    model_config = _FROZEN

    name: str = "default"
    version: Annotated[int, Field(ge=1)] = 1

    exposure_strength: Unit = 0.0
    actions: dict[str, ActionRule] = Field(
        default_factory=lambda: {
            "clicked": ActionRule(strength=0.2, polarity=0.5, note="attention, not approval"),
            "accepted": ActionRule(strength=0.55, polarity=1.0, note="took the output as is"),
            "copied": ActionRule(strength=0.5, polarity=0.8, note="took the output elsewhere"),
            "shared": ActionRule(strength=0.55, polarity=0.9, note="passed it on to others"),
            "dismissed": ActionRule(strength=0.4, polarity=-0.7, note="closed it unused"),
            "rejected": ActionRule(strength=0.6, polarity=-1.0, note="said no to it"),
        }
    )
    unknown_action: ActionRule = ActionRule(strength=0.15, polarity=0.0, note="unknown action")
    latency_bands: tuple[LatencyBand, ...] = (
        LatencyBand(below_ms=1_000, factor=0.5, label="reflexive: faster than reading"),
        LatencyBand(below_ms=3_000, factor=0.85, label="quick"),
        LatencyBand(below_ms=60_000, factor=1.2, label="considered"),
        LatencyBand(below_ms=600_000, factor=1.0, label="delayed"),
        LatencyBand(below_ms=None, factor=0.6, label="late: attribution uncertain"),
    )
    unknown_latency_factor: Factor = 0.9

    edit_bands: tuple[EditBand, ...] = (
        EditBand(min_similarity=1.0, strength=0.3, polarity=0.6, label="unchanged: used as is"),
        EditBand(min_similarity=0.97, strength=0.45, polarity=-0.2, label="trivial edit"),
        EditBand(min_similarity=0.85, strength=0.75, polarity=-0.5, label="light edit"),
        EditBand(min_similarity=0.5, strength=0.85, polarity=-0.8, label="substantial edit"),
        EditBand(min_similarity=0.0, strength=0.9, polarity=-1.0, label="rewrite"),
    )

    expand: ActionRule = ActionRule(strength=0.25, polarity=0.5, note="opened to read more")
    quick_collapse_ms: Annotated[float, Field(gt=0)] = 2_000
    quick_collapse: ActionRule = ActionRule(
        strength=0.35, polarity=-0.6, note="collapsed after a glance"
    )
    read_collapse: ActionRule = ActionRule(
        strength=0.15, polarity=0.2, note="collapsed after reading"
    )
    unknown_collapse: ActionRule = ActionRule(
        strength=0.2, polarity=-0.2, note="collapsed, dwell unknown"
    )

    outcome_strength: Unit = 1.0
    outcome_success_polarity: Signed = 1.0
    outcome_failure_polarity: Signed = -1.0
    outcome_unknown_polarity: Signed = 0.8
    outcome_half_life_ms: Annotated[float, Field(gt=0)] = 86_400_000
    outcome_min_factor: Unit = 0.1
    unknown_delay_factor: Unit = 0.5

    feedback_strength: Unit = 0.85
    neutral_rating_factor: Unit = 0.5
    choice: ActionRule = ActionRule(strength=0.8, polarity=1.0, note="chose it among options")
    comment_only: ActionRule = ActionRule(strength=0.3, polarity=0.0, note="comment, no rating")

    @model_validator(mode="after")
    def _check_bands(self) -> Self:
        bounds = [b.below_ms for b in self.latency_bands]
        if not bounds or bounds[-1] is not None or None in bounds[:-1]:
            raise ValueError("latency_bands: the last band, and only it, has below_ms = None")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(finite) or len(set(finite)) != len(finite):
            raise ValueError("latency_bands: below_ms must increase strictly")
        sims = [b.min_similarity for b in self.edit_bands]
        if not sims or sims != sorted(sims, reverse=True) or sims[-1] != 0.0:
            raise ValueError(
                "edit_bands: min_similarity must decrease and the last band must start at 0.0"
            )
        return self

    @property
    def ref(self) -> str:
        """``name@version``, written into every score."""
        return f"{self.name}@{self.version}"

    @classmethod
    def from_toml(cls, source: str | Path) -> ScoringPolicy:
        """Load a policy from a TOML file path (or TOML text); unspecified keys keep defaults.

        Raises :class:`signalkit.ConfigError` naming the offending key.
        """
        try:
            if isinstance(source, Path) or ("\n" not in source and source.endswith(".toml")):
                data = tomllib.loads(Path(source).read_text(encoding="utf-8"))
            else:
                data = tomllib.loads(source)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"scoring policy: cannot read {source!s}: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringPolicy:
        """Validate a policy from plain data; raises :class:`signalkit.ConfigError`.

        Keys left out keep their defaults; ``actions`` is merged verb by verb (so overriding
        ``accepted`` keeps ``rejected``), while a band list replaces the whole default list.
        """
        if isinstance(data.get("actions"), dict):
            defaults = {k: v.model_dump() for k, v in cls().actions.items()}
            data = {**data, "actions": {**defaults, **data["actions"]}}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "policy"
            raise ConfigError(f"scoring policy: {where}: {first['msg']}") from exc


DEFAULT_POLICY = ScoringPolicy()
"""The policy used when none is given; documented in ``docs/scoring.md``."""

Scorer = Callable[[Event, ScoringPolicy], Score | None]
"""A custom scorer: given an event (its ``score`` still unset) and the policy, return a
:class:`Score`, or ``None`` to fall back to the policy's default scoring."""


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def _r(factor: str, effect: float, note: str) -> Reason:
    r: Reason = _construct(Reason, {"factor": factor, "effect": round(effect, 4), "note": note})
    return r


def _s(strength: float, polarity: float, reasons: tuple[Reason, ...], p: ScoringPolicy) -> Score:
    values = {
        "strength": round(_clamp(strength), 4),
        "polarity": round(_clamp(polarity, -1.0, 1.0), 4),
        "reasons": reasons,
        "policy": p.ref,
    }
    s: Score = _construct(Score, values)
    return s


def _band(ms: float | None, p: ScoringPolicy) -> int:
    """Index of the latency band of ``ms`` (-1 when unknown)."""
    if ms is None:
        return -1
    for i, band in enumerate(p.latency_bands):
        if band.below_ms is None or ms < band.below_ms:
            return i
    raise AssertionError("validated policy has an open last band")  # pragma: no cover


def _latency(index: int, p: ScoringPolicy) -> tuple[float, Reason]:
    if index < 0:
        f = p.unknown_latency_factor
        return f, _r("time_to_action", f, "time-to-action unknown")
    band = p.latency_bands[index]
    return band.factor, _r("time_to_action", band.factor, band.label)


# Scores depend only on a few discrete inputs for most kinds; caching them per policy keeps
# the caller's thread cheap. Keyed by id() with the policy kept alongside (policies are few,
# and an id reused by a new policy is detected by the identity check).
_CACHE_MAX = 4096
_Entry = tuple["ScoringPolicy", dict[tuple[Any, ...], Score], tuple[float, ...], tuple[float, ...]]
_caches: dict[int, _Entry] = {}
# Every score_* function looks its key up first, inline, and builds the Score (and the closure
# that makes it) only on a miss: on a hit the caller pays for a dict lookup, not for function
# calls.


def _entry(p: ScoringPolicy) -> _Entry:
    entry = _caches.get(id(p))
    if entry is None or entry[0] is not p:
        if len(_caches) >= 64:
            _caches.clear()
        bounds = tuple(math.inf if b.below_ms is None else b.below_ms for b in p.latency_bands)
        floors = tuple(b.min_similarity for b in p.edit_bands)
        entry = _caches[id(p)] = (p, {}, bounds, floors)
    return entry


def _cache_of(p: ScoringPolicy) -> dict[tuple[Any, ...], Score]:
    return _entry(p)[1]


def _cached(p: ScoringPolicy, key: tuple[Any, ...], make: Callable[[], Score]) -> Score:
    cache = _cache_of(p)
    found = cache.get(key)
    if found is None:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        found = cache[key] = make()
    return found


def score_action(action: str, time_to_action_ms: float | None, p: ScoringPolicy) -> Score:
    """Score of an action: the action's base, times its time-to-action band."""
    entry = _caches.get(id(p))
    if entry is None or entry[0] is not p:
        entry = _entry(p)
    band = -1
    if time_to_action_ms is not None:
        bounds = entry[2]  # the first band whose bound is above it; the last one is open
        band = min(bisect.bisect_right(bounds, time_to_action_ms), len(bounds) - 1)
    found = entry[1].get(("action", action, band))
    if found is not None:  # the common case, kept short: this runs on the caller's thread
        return found

    def make() -> Score:
        rule = p.actions.get(action) or p.unknown_action
        base = _r("base", rule.strength, f"{action}: {rule.note}")
        factor, lat = _latency(band, p)
        return _s(rule.strength * factor, rule.polarity, (base, lat), p)

    return _cached(p, ("action", action, band), make)


def score_correction(similarity: float, p: ScoringPolicy) -> Score:
    """Score of a correction: strength and polarity from the band of its similarity."""
    entry = _caches.get(id(p))
    if entry is None or entry[0] is not p:
        entry = _entry(p)
    index = 0
    for index, floor in enumerate(entry[3]):  # noqa: B007 - the band is the result
        if similarity >= floor:
            break
    found = entry[1].get(("correction", index))
    if found is not None:
        return found
    chosen = p.edit_bands[index]

    def make() -> Score:
        reason = _r("edit_size", chosen.strength, chosen.label)
        return _s(chosen.strength, chosen.polarity, (reason,), p)

    return _cached(p, ("correction", index), make)


def score_toggle(state: str, dwell_ms: float | None, p: ScoringPolicy) -> Score:
    """Score of an expand (interest) or a collapse (graded by how long it stayed open)."""
    if state == "expanded":
        rule, tag = p.expand, "expanded"
    elif dwell_ms is None:
        rule, tag = p.unknown_collapse, "collapsed"
    elif dwell_ms < p.quick_collapse_ms:
        rule, tag = p.quick_collapse, "quick_collapse"
    else:
        rule, tag = p.read_collapse, "read_collapse"
    entry = _caches.get(id(p))
    if entry is not None and entry[0] is p:
        found = entry[1].get(("toggle", tag))
        if found is not None:
            return found
    return _cached(
        p,
        ("toggle", tag),
        lambda: _s(rule.strength, rule.polarity, (_r("base", rule.strength, rule.note),), p),
    )


def score_outcome(success: bool | None, delay_ms: float | None, p: ScoringPolicy) -> Score:
    """Score of an outcome: strongest base, attribution halving every ``outcome_half_life_ms``."""
    if delay_ms is None:
        factor = -1.0
    else:  # rounded like every score number, which also makes the score cacheable
        decay = 0.5 ** (max(delay_ms, 0.0) / p.outcome_half_life_ms)
        factor = round(max(p.outcome_min_factor, decay), 4)
    entry = _caches.get(id(p))
    if entry is not None and entry[0] is p:
        found = entry[1].get(("outcome", success, factor))
        if found is not None:
            return found

    def make() -> Score:
        if success is True:
            polarity, why = p.outcome_success_polarity, "succeeded"
        elif success is False:
            polarity, why = p.outcome_failure_polarity, "failed"
        else:
            polarity, why = p.outcome_unknown_polarity, "happened (success not stated)"
        base = _r("base", p.outcome_strength, f"outcome {why}")
        if factor < 0:
            f, note = p.unknown_delay_factor, "delay unknown"
        else:
            hours = p.outcome_half_life_ms / 3_600_000
            f, note = factor, f"attribution halves every {hours:g} h after the exposure"
        return _s(p.outcome_strength * f, polarity, (base, _r("attribution", f, note)), p)

    return _cached(p, ("outcome", success, factor), make)


def score_feedback(
    rating: float | None,
    scale: tuple[float, float],
    choice: str | None,
    comment: str | None,
    p: ScoringPolicy,
) -> Score:
    """Score of explicit feedback: the rating mapped onto [-1, 1], or a choice, or a comment."""

    def make() -> Score:
        if rating is not None:
            lo, hi = scale
            polarity = 2.0 * (rating - lo) / (hi - lo) - 1.0 if hi > lo else 0.0
            base = _r("base", p.feedback_strength, f"rating {rating:g} on {lo:g}..{hi:g}")
            if abs(polarity) < 1e-9:
                f = p.neutral_rating_factor
                neutral = _r("neutral_rating", f, "a mid-scale rating says little")
                return _s(p.feedback_strength * f, 0.0, (base, neutral), p)
            return _s(p.feedback_strength, polarity, (base,), p)
        rule = p.choice if choice is not None else p.comment_only
        return _s(rule.strength, rule.polarity, (_r("base", rule.strength, rule.note),), p)

    key = ("feedback", rating, scale, choice is not None, comment is not None)
    return _cached(p, key, make)


def score_exposure(p: ScoringPolicy) -> Score:
    """Score of an exposure: context for later signals, not a signal itself."""

    def make() -> Score:
        reason = _r("base", p.exposure_strength, "an exposure is context, not a signal")
        return _s(p.exposure_strength, 0.0, (reason,), p)

    return _cached(p, ("exposure",), make)


def score(event: Event, policy: ScoringPolicy = DEFAULT_POLICY) -> Score:
    """The default score of ``event`` under ``policy``: a pure function of the event's fields."""
    p = policy
    if isinstance(event, ActionEvent):
        return score_action(event.action, event.time_to_action_ms, p)
    if isinstance(event, CorrectionEvent):
        return score_correction(event.similarity, p)
    if isinstance(event, ToggleEvent):
        return score_toggle(event.state, event.dwell_ms, p)
    if isinstance(event, OutcomeEvent):
        return score_outcome(event.success, event.delay_ms, p)
    if isinstance(event, FeedbackEvent):
        return score_feedback(event.rating, event.scale, event.choice, event.comment, p)
    if isinstance(event, ExposureEvent):
        return score_exposure(p)
    raise TypeError(f"not a signalkit event: {type(event).__name__}")  # pragma: no cover


def rescore(
    events: Iterable[Event],
    policy: ScoringPolicy = DEFAULT_POLICY,
    scorer: Scorer | None = None,
) -> list[Event]:
    """Return copies of ``events`` scored under ``policy`` (and ``scorer``, if given).

    Events are immutable: the originals are untouched. Useful to compare policies on history.
    """
    out: list[Event] = []
    for event in events:
        new = scorer(event, policy) if scorer is not None else None
        out.append(event.model_copy(update={"score": new or score(event, policy)}))
    return out
