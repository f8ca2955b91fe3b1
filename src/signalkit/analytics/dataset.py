"""Training-ready exports of recorded signals: preference pairs and reward-labelled exposures.

Two formats (``docs/dataset.md`` shows a record of each):

- ``pairs`` — one record per correction, in the ``prompt``/``chosen``/``rejected`` form DPO
  trainers read: the AI output the user edited is *rejected*, the text they used is *chosen*,
  and the prompt comes from the exposure the correction refers to.
- ``labels`` — one record per exposure: what was shown, its merged reward
  (:mod:`._reward`), ``label`` = polarity and ``weight`` = strength, with the names of the rules
  that produced it. Exposures nobody reacted to within the attribution window are weak
  negatives (rule ``ignored``).

Both read the deduplicated ``events`` table of :func:`~signalkit.analytics._source.load_events`
and account for every candidate record: kept, or dropped under a named reason.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ._reward import IGNORED_POLARITY, IGNORED_STRENGTH, MergedReward, ignored_reward
from ._reward import merge_signals as _merge

if TYPE_CHECKING:
    from ._source import LoadedEvents

__all__ = [
    "DROP_REASONS",
    "DatasetOptions",
    "DatasetResult",
    "build_dataset",
    "build_labels",
    "build_pairs",
    "jsonl_lines",
]

Format = Literal["pairs", "labels"]

DAY_MS = 86_400_000

DROP_REASONS: dict[str, str] = {
    "no_exposure": "the exposure the signal refers to is not in the data",
    "out_of_range": "the exposure was shown outside --since/--until",
    "not_selected": "the exposure's model, model version or surface was not selected",
    "unchanged": "a correction whose corrected text equals the original: no preference",
    "no_prompt": "--require-prompt and the exposure has no prompt attribute",
    "below_min_strength": "strength below --min-strength",
    "duplicate_pair": "the same prompt, chosen and rejected as a pair already kept",
    "window_open": "no signal yet, but the attribution window is still open: not yet ignored",
    "ignored_excluded": "ignored exposure, and --no-ignored was given",
    "user_cap": "over --max-per-user for this user (the strongest, then most recent, are kept)",
}
"""Every reason a candidate record can be dropped, by the name the summary uses."""


@dataclass(frozen=True)
class DatasetOptions:
    """What to export and what to leave out. Times are Unix milliseconds (UTC)."""

    min_strength: float = 0.0
    """Drop records whose strength (the correction's, or the merged reward's) is below this."""
    since_ms: int | None = None
    """Only exposures shown at or after this time."""
    until_ms: int | None = None
    """Only exposures shown before this time."""
    models: tuple[str, ...] = ()
    """Only exposures of these model names (empty: all)."""
    model_versions: tuple[str, ...] = ()
    """Only exposures of these model versions (empty: all)."""
    surfaces: tuple[str, ...] = ()
    """Only exposures on these surfaces (empty: all)."""
    max_per_user: int | None = None
    """Keep at most this many records per user: the strongest, then the most recent."""
    window_ms: int = DAY_MS
    """Attribution window: an exposure with no signal this long after it was shown (measured
    against the latest event time in the data) is ``ignored``."""
    ignored: bool = True
    """Export ignored exposures as weak negatives (``labels``)."""
    ignored_strength: float = IGNORED_STRENGTH
    ignored_polarity: float = IGNORED_POLARITY
    prompt_attribute: str = "prompt"
    """The exposure attribute holding the prompt/input text (``pairs``)."""
    require_prompt: bool = False
    """Drop pairs whose exposure has no ``prompt_attribute`` instead of using its context."""


@dataclass
class DatasetResult:
    """The exported records and the account of every candidate."""

    format: Format
    records: list[dict[str, Any]]
    candidates: int = 0
    """Corrections (``pairs``) or exposures (``labels``) considered."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Candidates left out, by reason (keys of :data:`DROP_REASONS`)."""
    rules: dict[str, int] = field(default_factory=dict)
    """``labels``: how many kept records each reward rule shaped."""
    orphan_signals: int = 0
    """Signals whose exposure is not in the data (``labels``; ``pairs`` counts them as
    ``no_exposure``)."""
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return len(self.records)

    def summary(self) -> str:
        """One line for stderr: what was kept, and what was dropped and why."""
        what = "corrections" if self.format == "pairs" else "exposures"
        parts = [
            f"signalkit dataset ({self.format}): kept {self.kept:,} of {self.candidates:,} {what}"
        ]
        dropped = ", ".join(f"{k} {v:,}" for k, v in sorted(self.dropped.items()) if v)
        parts.append(f"dropped: {dropped}" if dropped else "dropped: none")
        if self.format == "labels" and self.orphan_signals:
            parts.append(f"signals without their exposure: {self.orphan_signals:,}")
        parts.append(
            f"read {self.events:,} events ({self.duplicates:,} duplicate ids, "
            f"{self.malformed:,} malformed lines)"
        )
        return "; ".join(parts)


# -- reading the events table ---------------------------------------------------------------

_EXPOSURE_COLUMNS = (
    "id",
    "ts_ms",
    "surface",
    "model_name",
    "model_version",
    "model_variant",
    "user_id",
    "anonymous_id",
    "session_id",
    "tenant_id",
    "attributes",
    "items",
    "service",
)
_SIGNAL_COLUMNS = (
    "id",
    "kind",
    "exposure_id",
    "ts_ms",
    "strength",
    "polarity",
    "similarity",
    "edit_distance",
    "item_id",
    "rating",
    "choice",
    "original",
    "corrected",
    "user_id",
    "anonymous_id",
    "action",
)


def _rows(loaded: LoadedEvents, sql: str) -> Iterator[dict[str, Any]]:
    cursor = loaded.connection.execute(sql)
    names = [d[0] for d in cursor.description or ()]
    while batch := cursor.fetchmany(10_000):
        for values in batch:
            yield dict(zip(names, values, strict=True))


def _cols(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _exposures(loaded: LoadedEvents) -> dict[str, dict[str, Any]]:
    sql = (
        f"SELECT {_cols(_EXPOSURE_COLUMNS)} FROM {loaded.table} "
        "WHERE kind = 'exposure' ORDER BY ts_ms, id"
    )
    return {row["id"]: row for row in _rows(loaded, sql)}


def _latest_ms(loaded: LoadedEvents) -> int | None:
    row = loaded.connection.execute(f"SELECT max(ts_ms) FROM {loaded.table}").fetchall()
    value = row[0][0] if row else None
    return int(value) if value is not None else None


def _json(text: object) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _user_key(row: Mapping[str, Any]) -> str | None:
    user = row.get("user_id") or row.get("anonymous_id")
    return str(user) if user else None


def _selected(exposure: Mapping[str, Any], options: DatasetOptions) -> str | None:
    """Why an exposure is outside the selection, or None when it is inside."""
    ts = exposure["ts_ms"]
    if options.since_ms is not None and ts < options.since_ms:
        return "out_of_range"
    if options.until_ms is not None and ts >= options.until_ms:
        return "out_of_range"
    if options.models and exposure.get("model_name") not in options.models:
        return "not_selected"
    if options.model_versions and exposure.get("model_version") not in options.model_versions:
        return "not_selected"
    if options.surfaces and exposure.get("surface") not in options.surfaces:
        return "not_selected"
    return None


def _exposure_record(exposure: Mapping[str, Any], *, without: str | None = None) -> dict[str, Any]:
    attributes = _json(exposure.get("attributes"))
    if not isinstance(attributes, dict):
        attributes = {}
    if without is not None:
        attributes = {k: v for k, v in attributes.items() if k != without}
    items = _json(exposure.get("items"))
    return {
        "id": exposure["id"],
        "ts": _iso(exposure["ts_ms"]),
        "service": exposure.get("service"),
        "surface": exposure.get("surface"),
        "model": {
            "name": exposure.get("model_name"),
            "version": exposure.get("model_version"),
            "variant": exposure.get("model_variant"),
        },
        "subject": {
            k: exposure.get(k) for k in ("user_id", "anonymous_id", "session_id", "tenant_id")
        },
        "attributes": attributes,
        "items": items if isinstance(items, list) else [],
    }


def _cap(
    candidates: list[tuple[dict[str, Any], str | None, float, int, str]],
    max_per_user: int | None,
    dropped: Counter[str],
) -> list[dict[str, Any]]:
    """Apply the per-user cap; ``candidates`` are (record, user, strength, ts_ms, id)."""
    if max_per_user is None:
        return [c[0] for c in candidates]
    by_user: dict[str | None, list[int]] = defaultdict(list)
    for index, (_, user, _, _, _) in enumerate(candidates):
        by_user[user].append(index)
    keep: set[int] = set()
    for user, indexes in by_user.items():
        if user is None:  # records with no user or anonymous id are not capped
            keep.update(indexes)
            continue
        # strongest first, then most recent, then by id: the same data gives the same choice
        ranked = sorted(
            indexes, key=lambda i: (-candidates[i][2], -candidates[i][3], candidates[i][4])
        )
        keep.update(ranked[:max_per_user])
        dropped["user_cap"] += max(0, len(ranked) - max_per_user)
    return [c[0] for i, c in enumerate(candidates) if i in keep]


def _finish(result: DatasetResult, loaded: LoadedEvents, dropped: Counter[str]) -> DatasetResult:
    result.dropped = {k: v for k, v in sorted(dropped.items()) if v}
    result.events = loaded.events
    result.duplicates = loaded.duplicates
    result.malformed = loaded.malformed_count
    result.files = list(loaded.files)
    return result


# -- pairs -----------------------------------------------------------------------------------


def _prompt(exposure: Mapping[str, Any], attribute: str) -> tuple[str | None, str]:
    """The prompt text of an exposure and where it came from (``attribute`` or ``context``)."""
    attributes = _json(exposure.get("attributes"))
    if not isinstance(attributes, dict):
        attributes = {}
    value = attributes.get(attribute)
    if isinstance(value, str) and value:
        return value, "attribute"
    lines = [f"surface: {exposure.get('surface') or ''}"]
    lines.extend(f"{k}: {v}" for k, v in sorted(attributes.items()) if k != attribute)
    return "\n".join(lines), "context"


def build_pairs(loaded: LoadedEvents, options: DatasetOptions | None = None) -> DatasetResult:
    """Preference pairs from corrections: ``{prompt, chosen: corrected, rejected: original}``."""
    options = options or DatasetOptions()
    exposures = _exposures(loaded)
    dropped: Counter[str] = Counter()
    result = DatasetResult("pairs", [])
    sql = (
        f"SELECT {_cols(_SIGNAL_COLUMNS)} FROM {loaded.table} "
        "WHERE kind = 'correction' ORDER BY ts_ms, id"
    )
    candidates: list[tuple[dict[str, Any], str | None, float, int, str]] = []
    seen_pairs: dict[tuple[str, str, str], int] = {}
    for correction in _rows(loaded, sql):
        result.candidates += 1
        exposure = exposures.get(correction["exposure_id"])
        if exposure is None:
            dropped["no_exposure"] += 1
            continue
        reason = _selected(exposure, options)
        if reason is not None:
            dropped[reason] += 1
            continue
        original, corrected = correction.get("original"), correction.get("corrected")
        if not isinstance(original, str) or not isinstance(corrected, str):
            dropped["unchanged"] += 1  # a correction row without both texts carries no pair
            continue
        if original == corrected:
            dropped["unchanged"] += 1
            continue
        prompt, source = _prompt(exposure, options.prompt_attribute)
        if options.require_prompt and source != "attribute":
            dropped["no_prompt"] += 1
            continue
        strength = float(correction.get("strength") or 0.0)
        if strength < options.min_strength:
            dropped["below_min_strength"] += 1
            continue
        key = (prompt or "", corrected, original)
        record = {
            "prompt": prompt,
            "chosen": corrected,
            "rejected": original,
            "prompt_source": source,
            "exposure_id": exposure["id"],
            "event_id": correction["id"],
            "ts": _iso(correction["ts_ms"]),
            "surface": exposure.get("surface"),
            "model": {
                "name": exposure.get("model_name"),
                "version": exposure.get("model_version"),
                "variant": exposure.get("model_variant"),
            },
            "user_id": _user_key(exposure) or _user_key(correction),
            "similarity": correction.get("similarity"),
            "edit_distance": correction.get("edit_distance"),
            "strength": strength,
            "polarity": correction.get("polarity"),
        }
        candidate = (
            record,
            record["user_id"],
            strength,
            int(correction["ts_ms"]),
            record["event_id"],
        )
        # identical pairs once: the strongest copy (then the most recent) is the one kept
        previous = seen_pairs.get(key)
        if previous is not None:
            dropped["duplicate_pair"] += 1
            old = candidates[previous]
            if (strength, candidate[3]) > (old[2], old[3]):
                candidates[previous] = candidate
            continue
        seen_pairs[key] = len(candidates)
        candidates.append(candidate)
    result.records = _cap(candidates, options.max_per_user, dropped)
    return _finish(result, loaded, dropped)


# -- labels ----------------------------------------------------------------------------------


def build_labels(loaded: LoadedEvents, options: DatasetOptions | None = None) -> DatasetResult:
    """One reward-labelled record per exposure: ``{exposure, label, weight, reward, rules}``."""
    options = options or DatasetOptions()
    exposures = _exposures(loaded)
    latest = _latest_ms(loaded)
    signals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    result = DatasetResult("labels", [])
    sql = (
        f"SELECT {_cols(_SIGNAL_COLUMNS)} FROM {loaded.table} "
        "WHERE kind <> 'exposure' ORDER BY ts_ms, id"
    )
    for row in _rows(loaded, sql):
        if row["exposure_id"] in exposures:
            signals[row["exposure_id"]].append(row)
        else:
            result.orphan_signals += 1
    dropped: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    candidates: list[tuple[dict[str, Any], str | None, float, int, str]] = []
    for exposure_id, exposure in exposures.items():
        result.candidates += 1
        reason = _selected(exposure, options)
        if reason is not None:
            dropped[reason] += 1
            continue
        merged: MergedReward | None = _merge(signals.get(exposure_id, ()))
        if merged is None:
            shown = int(exposure["ts_ms"])
            if latest is None or shown + options.window_ms > latest:
                dropped["window_open"] += 1
                continue
            if not options.ignored:
                dropped["ignored_excluded"] += 1
                continue
            merged = ignored_reward(options.ignored_strength, options.ignored_polarity)
        if merged.strength < options.min_strength:
            dropped["below_min_strength"] += 1
            continue
        record: dict[str, Any] = {
            "exposure": _exposure_record(exposure),
            "label": merged.polarity,
            "weight": merged.strength,
            "reward": merged.reward,
            "rules": list(merged.rules),
            "basis": list(merged.basis),
            "signals": merged.signals,
            "item_id": merged.item_id,
        }
        candidates.append(
            (record, _user_key(exposure), merged.strength, int(exposure["ts_ms"]), exposure_id)
        )
    result.records = _cap(candidates, options.max_per_user, dropped)
    for record in result.records:
        rules.update(record["rules"])
    result.rules = dict(sorted(rules.items()))
    return _finish(result, loaded, dropped)


def build_dataset(
    loaded: LoadedEvents, format: Format, options: DatasetOptions | None = None
) -> DatasetResult:
    """Export ``format`` (``pairs`` or ``labels``) from loaded events."""
    builders: dict[str, Callable[[LoadedEvents, DatasetOptions | None], DatasetResult]] = {
        "pairs": build_pairs,
        "labels": build_labels,
    }
    if format not in builders:
        raise ValueError(f"format: must be 'pairs' or 'labels', got {format!r}")
    return builders[format](loaded, options)


def jsonl_lines(records: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """Each record as one compact JSON line (with its newline)."""
    for record in records:
        yield orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
