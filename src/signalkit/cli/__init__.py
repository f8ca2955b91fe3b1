"""The ``signalkit`` command: ``demo``, ``tail``, ``schema``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _default_path() -> Path:
    import os

    return Path(os.environ.get("SIGNALKIT_DIR") or ".signalkit") / "events.jsonl"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``signalkit`` command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="signalkit", description="Capture, inspect and score strong user signals."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="simulate a product with two model versions and summarise its signals",
        description="Runs a simulated support product through the public API, writes its "
        "events to JSONL (the embedded default) and prints a summary per model version.",
    )
    demo.add_argument("--users", type=int, default=300, help="simulated users (default 300)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument(
        "--out",
        type=Path,
        default=Path(".signalkit") / "demo.jsonl",
        help="JSONL file to write, replaced on each run (default .signalkit/demo.jsonl)",
    )
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    tail = sub.add_parser(
        "tail", help="show events from a JSONL file, readably", description="Show events."
    )
    tail.add_argument("path", nargs="?", type=Path, help="JSONL file (default: embedded)")
    tail.add_argument("-n", "--lines", type=int, default=20, help="last N events (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--kind", action="append", help="only these kinds (repeatable)")
    tail.add_argument("--json", action="store_true", help="print raw JSON lines")

    sub.add_parser("schema", help="print the JSON Schema of signalkit events")

    from .report import add_parser as add_report_parser

    add_report_parser(sub)

    from .check import add_check_parser
    from .dataset import add_dataset_parser

    add_dataset_parser(sub)
    add_check_parser(sub)

    args = parser.parse_args(argv)
    try:
        if args.command in ("dataset", "check"):
            return int(args.run(args))
        if args.command == "report":
            from .report import run as run_report

            return run_report(args)
        if args.command == "demo":
            from .demo import run_demo

            if args.users < 1:
                parser.error("--users must be >= 1")
            run_demo(args.out, users=args.users, seed=args.seed, progress=not args.no_progress)
            return 0
        if args.command == "tail":
            from .tail import tail as run_tail

            return run_tail(
                args.path or _default_path(),
                lines=args.lines,
                follow=args.follow,
                kinds=set(args.kind) if args.kind else None,
                raw=args.json,
            )
        if args.command == "schema":
            import orjson

            from ..events import event_json_schema

            sys.stdout.write(orjson.dumps(event_json_schema(), option=orjson.OPT_INDENT_2).decode())
            sys.stdout.write("\n")
            return 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `signalkit tail | head`
        return 0
    parser.error(f"unknown command {args.command}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
