"""``signalkit dataset``: training-ready JSONL from recorded signals (pairs or labels)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "add_dataset_parser",
    "parse_duration_ms",
    "parse_time_ms",
    "run_dataset",
    "write_malformed",
]

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or plain seconds, as milliseconds."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a number with s, m, h, d or w (e.g. 24h)"
        )
    return int(float(m.group(1)) * _UNITS_MS[m.group(2) or "s"])


def parse_time_ms(text: str) -> int:
    """An ISO 8601 date or date-time as Unix ms; a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01 or 2026-11-01T12:00Z)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _fraction(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return x


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def add_dataset_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``signalkit dataset`` on the subcommand parsers ``sub``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "dataset",
        help="export training data: preference pairs or reward-labelled exposures (JSONL)",
        description="Export recorded signals as training data. 'pairs': one DPO record per "
        "correction ({prompt, chosen: corrected, rejected: original}). 'labels': one record "
        "per exposure with its merged reward ({exposure, label: polarity, weight: strength, "
        "reward, rules}); exposures with no signal inside the attribution window are weak "
        "negatives. Writes JSONL to --out or stdout and a summary line to stderr. "
        "See docs/dataset.md.",
    )
    p.add_argument(
        "source",
        nargs="?",
        help="JSONL file, directory (with rotated backups) or glob (default: $SIGNALKIT_DIR "
        "or ./.signalkit)",
    )
    p.add_argument("--format", choices=("pairs", "labels"), required=True, help="what to export")
    p.add_argument("-o", "--out", type=Path, help="file to write (default: stdout)")
    p.add_argument(
        "--min-strength",
        type=_fraction,
        default=0.0,
        help="drop records weaker than this, in [0, 1] (default 0)",
    )
    p.add_argument("--since", type=parse_time_ms, help="only exposures shown at or after this")
    p.add_argument("--until", type=parse_time_ms, help="only exposures shown before this")
    p.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    p.add_argument(
        "--model-version", action="append", default=[], help="only this version (repeatable)"
    )
    p.add_argument("--surface", action="append", default=[], help="only this surface (repeatable)")
    p.add_argument(
        "--max-per-user",
        type=_positive,
        help="keep at most N records per user: the strongest, then the most recent",
    )
    p.add_argument(
        "--window",
        type=parse_duration_ms,
        default=parse_duration_ms("24h"),
        help="attribution window: no signal this long after an exposure makes it 'ignored' "
        "(default 24h; measured against the latest event in the data)",
    )
    p.add_argument("--no-ignored", action="store_true", help="labels: leave ignored exposures out")
    p.add_argument(
        "--ignored-strength",
        type=_fraction,
        default=0.1,
        help="labels: weight of an ignored exposure (default 0.1)",
    )
    p.add_argument(
        "--prompt-attribute",
        default="prompt",
        help="pairs: the exposure attribute holding the prompt text (default 'prompt'); "
        "without it the prompt is the exposure's surface and attributes",
    )
    p.add_argument(
        "--require-prompt",
        action="store_true",
        help="pairs: drop corrections whose exposure has no prompt attribute",
    )
    p.set_defaults(run=run_dataset)
    return p


def run_dataset(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``signalkit dataset`` with parsed ``args``; returns the exit status."""
    err = err or sys.stderr
    try:
        from ..analytics import MissingDependency, load_events
    except ImportError as exc:  # pragma: no cover - the package is always there
        err.write(f"signalkit dataset: {exc}\n")
        return 1
    from ..analytics.dataset import DatasetOptions, build_dataset, jsonl_lines

    options = DatasetOptions(
        min_strength=args.min_strength,
        since_ms=args.since,
        until_ms=args.until,
        models=tuple(args.model),
        model_versions=tuple(args.model_version),
        surfaces=tuple(args.surface),
        max_per_user=args.max_per_user,
        window_ms=args.window,
        ignored=not args.no_ignored,
        ignored_strength=args.ignored_strength,
        prompt_attribute=args.prompt_attribute,
        require_prompt=args.require_prompt,
    )
    try:
        loaded = load_events(args.source)
    except MissingDependency as exc:
        err.write(f"signalkit dataset: {exc}\n")
        return 1
    except FileNotFoundError as exc:
        err.write(f"signalkit dataset: {exc} (run `signalkit demo` first?)\n")
        return 1
    with loaded:
        result = build_dataset(loaded, args.format, options)
    if args.out is None:
        stream = out or sys.stdout
        for line in jsonl_lines(result.records):
            stream.write(line.decode())
        stream.flush()
    else:
        _write_atomically(args.out, jsonl_lines(result.records))
    err.write(result.summary() + (f" -> {args.out}" if args.out else "") + "\n")
    write_malformed("signalkit dataset", loaded, err)
    return 0


def write_malformed(prog: str, loaded: Any, err: TextIO, limit: int = 5) -> None:
    """Tell ``err`` how many lines were skipped as malformed, naming the first few."""
    if not loaded.malformed_count:
        return
    err.write(f"{prog}: skipped {loaded.malformed_count:,} malformed lines\n")
    for bad in loaded.malformed[:limit]:
        err.write(f"  {bad.file}:{bad.line}: {bad.reason}\n")
    more = loaded.malformed_count - min(limit, len(loaded.malformed))
    if more > 0:
        err.write(f"  ... and {more:,} more\n")


def _write_atomically(path: Path, lines: Any) -> None:
    """Write next to ``path`` and rename, so a reader never sees half a dataset."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for line in lines:
                f.write(line)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
