"""One reward per exposure: its signals merged by written, named rules (DESIGN §9).

Every signal already carries a score (strength in [0, 1], polarity in [-1, 1]). An exposure
often gets several: an accept and then an edit, a thumbs-up and a resolved ticket. Training
wants one number per exposure, and a person auditing the data wants to know where it came
from. So the merge is a short list of rules, applied in a fixed order, and the merged record
names every rule that shaped it (:data:`RULES` says what each one does; ``docs/dataset.md``
explains why).

The rules, in order of precedence:

1. an outcome outweighs everything else (``outcome_outweighs_signals``); of several outcomes
   the strongest counts (``strongest_outcome``);
2. otherwise explicit feedback with a rating or a choice outweighs behaviour
   (``rating_outweighs_behaviour``); a later rating replaces an earlier one
   (``latest_rating_replaces_earlier``);
3. otherwise behaviour — actions, corrections, toggles, comment-only feedback — gives the
   strongest signal (``strongest_behaviour``), except that a correction after a positive action
   lowers that action's reward in proportion to how much of the text was changed
   (``correction_after_accept_lowers``);
4. an exposure with exactly one signal takes that signal's score (``single_signal``);
5. an exposure with no signal at all once its attribution window has closed is a censored,
   weak negative (``ignored``); one whose window is still open gets no reward yet.

Pure functions over event rows — mappings with the column names of the events table
(:mod:`._columns`: ``id``, ``kind``, ``ts_ms``, ``strength``, ``polarity``, ``similarity``,
``item_id``, ``rating``, ``choice``) — so they run on rows from DuckDB, ClickHouse or a list
built by hand. No I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "IGNORED_POLARITY",
    "IGNORED_STRENGTH",
    "RULES",
    "MergedReward",
    "ignored_reward",
    "merge_signals",
    "ts_ms",
]

IGNORED_STRENGTH = 0.1
"""Default strength of an ignored exposure: weaker than any recorded signal but a click."""
IGNORED_POLARITY = -1.0
"""An ignored exposure was not acted on: a negative label, weighted by its low strength."""

RULES: dict[str, str] = {
    "outcome_outweighs_signals": "an outcome decides the reward; the exposure's actions, "
    "corrections, toggles and feedback are not used",
    "strongest_outcome": "of several outcomes, the one with the highest strength counts "
    "(the latest on a tie)",
    "rating_outweighs_behaviour": "with no outcome, explicit feedback (a rating or a choice) "
    "decides the reward; actions, corrections and toggles are not used",
    "latest_rating_replaces_earlier": "of several ratings or choices, the latest replaces the "
    "earlier ones",
    "strongest_behaviour": "with no outcome and no rating, the strongest action, correction, "
    "toggle or comment counts (the latest on a tie)",
    "correction_after_accept_lowers": "a correction after a positive action (accept, copy, "
    "share, click) moves the action's reward toward the correction's: "
    "action × similarity + correction × (1 − similarity)",
    "single_signal": "the exposure's only signal is its reward",
    "ignored": "no signal and the attribution window has closed: a censored weak negative",
}
"""Every rule the merge can apply, by the name written into merged records."""

_RATED_FEEDBACK = ("rating", "choice")


@dataclass(frozen=True)
class MergedReward:
    """The one reward of an exposure and how it was reached."""

    reward: float
    """Signed reward in [-1, 1]: ``strength × polarity``."""
    strength: float
    """How far to trust the reward as a label, in [0, 1]: the weight of a training example."""
    polarity: float
    """Whether the exposure's output was endorsed (+) or rejected (−), in [-1, 1]."""
    rules: tuple[str, ...]
    """Names of the rules that produced it (keys of :data:`RULES`), in the order applied."""
    basis: tuple[str, ...]
    """Ids of the events the reward was taken from (empty for ``ignored``)."""
    signals: int
    """How many signals the exposure had (all of them, used or not)."""
    item_id: str | None = None
    """The impression-list item the deciding signal was about, if any."""


@dataclass(frozen=True)
class _Signal:
    id: str
    kind: str
    ts: int
    strength: float
    polarity: float
    event: Mapping[str, Any]

    @property
    def value(self) -> float:
        return self.strength * self.polarity


def ts_ms(value: object) -> int | None:
    """A time (Unix ms, ISO 8601 text or an aware datetime) as Unix milliseconds, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return None
        return int(value.timestamp() * 1000)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return ts_ms(parsed)
    return None


def _number(value: object, lo: float, hi: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if lo <= x <= hi else None


def _signal(row: Mapping[str, Any]) -> _Signal | None:
    strength = _number(row.get("strength"), 0.0, 1.0)
    polarity = _number(row.get("polarity"), -1.0, 1.0)
    ts = ts_ms(row.get("ts_ms"))
    if strength is None or polarity is None or ts is None:
        return None
    return _Signal(str(row.get("id", "")), str(row.get("kind", "")), ts, strength, polarity, row)


def _latest_strongest(signals: list[_Signal]) -> _Signal:
    # strongest first; on a tie the latest, then the larger id, so the choice is deterministic
    return max(signals, key=lambda s: (s.strength, s.ts, s.id))


def _item(signal: _Signal) -> str | None:
    item = signal.event.get("item_id")
    return item if isinstance(item, str) else None


def merge_signals(events: Iterable[Mapping[str, Any]]) -> MergedReward | None:
    """Merge one exposure's signal events into its reward; ``None`` if it has no usable signal.

    ``events`` are the exposure's signal rows (see the module docstring for the keys). Rows
    without a valid ``strength``, ``polarity`` or ``ts_ms`` are not signals and are skipped.
    """
    signals = [s for s in (_signal(e) for e in events) if s is not None and s.kind != "exposure"]
    if not signals:
        return None
    n = len(signals)

    outcomes = [s for s in signals if s.kind == "outcome"]
    if outcomes:
        pick = _latest_strongest(outcomes)
        rules: list[str] = []
        if len(outcomes) < n:
            rules.append("outcome_outweighs_signals")
        if len(outcomes) > 1:
            rules.append("strongest_outcome")
        return _from(pick, rules or ["single_signal"], n)

    rated = [
        s
        for s in signals
        if s.kind == "feedback" and any(s.event.get(k) is not None for k in _RATED_FEEDBACK)
    ]
    if rated:
        pick = max(rated, key=lambda s: (s.ts, s.id))
        rules = []
        if len(rated) < n:
            rules.append("rating_outweighs_behaviour")
        if len(rated) > 1:
            rules.append("latest_rating_replaces_earlier")
        return _from(pick, rules or ["single_signal"], n)

    lowered = _correction_after_accept(signals, n)
    if lowered is not None:
        return lowered
    return _from(
        _latest_strongest(signals), ["strongest_behaviour" if n > 1 else "single_signal"], n
    )


def _correction_after_accept(signals: list[_Signal], n: int) -> MergedReward | None:
    corrections = [s for s in signals if s.kind == "correction"]
    if not corrections:
        return None
    correction = max(corrections, key=lambda s: (s.ts, s.id))
    positive = [
        s for s in signals if s.kind == "action" and s.polarity > 0 and s.ts <= correction.ts
    ]
    if not positive:
        return None
    similarity = _number(correction.event.get("similarity"), 0.0, 1.0)
    if similarity is None:
        return None
    accept = max(positive, key=lambda s: (s.ts, s.id))  # the action the user then edited
    reward = accept.value * similarity + correction.value * (1.0 - similarity)
    strength = max(accept.strength, correction.strength)
    polarity = reward / strength if strength > 0 else 0.0
    return MergedReward(
        reward=_round(reward),
        strength=_round(strength),
        polarity=_round(max(-1.0, min(1.0, polarity))),
        rules=("correction_after_accept_lowers",),
        basis=(accept.id, correction.id),
        signals=n,
        item_id=_item(accept),
    )


def _from(signal: _Signal, rules: list[str], n: int) -> MergedReward:
    return MergedReward(
        reward=_round(signal.value),
        strength=signal.strength,
        polarity=signal.polarity,
        rules=tuple(rules),
        basis=(signal.id,),
        signals=n,
        item_id=_item(signal),
    )


def ignored_reward(
    strength: float = IGNORED_STRENGTH, polarity: float = IGNORED_POLARITY
) -> MergedReward:
    """The reward of an exposure with no signal once its attribution window has closed."""
    return MergedReward(
        reward=_round(strength * polarity),
        strength=strength,
        polarity=polarity,
        rules=("ignored",),
        basis=(),
        signals=0,
    )


def _round(x: float) -> float:
    return round(x, 6)
