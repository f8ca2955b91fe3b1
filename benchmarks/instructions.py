"""Instructions per call on the caller's thread, counted by valgrind: an A/B that noise cannot move.

Run from the repository root (needs ``valgrind``, e.g. ``apt-get install valgrind``):

    uv run python benchmarks/instructions.py                 # the working tree
    uv run python benchmarks/instructions.py --ref HEAD~3    # ... beside an older commit

Wall-clock times on a shared VM move by 1.5-2x from one minute to the next (see README.md), so
a change worth 10 % cannot be seen in them without long interleaved runs. Instruction counts
are exact. Each call is run ``--small`` and ``--large`` times in a fresh interpreter under
``valgrind --tool=callgrind``; the difference divided by the difference in calls is the cost of
one call, start-up and import cancelling out. The GC is off and delivery is ``sync`` (nothing
is exported while counting), so this is the caller's own work. The clock is replaced by one
that advances 5 µs per reading, as it would between calls at full speed: under valgrind real
time runs ~50x slower, and every call would start a new millisecond.

Fewer instructions is not the same as less time (cache misses and branch mispredictions are
not counted), so the timing benchmark, hot_path.py, stays the measure; this one tells whether a
change removed work.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALLS = ("action", "token", "correction", "toggle", "outcome", "decorator", "nothing")

CHILD = r"""
import gc, importlib, itertools, os, sys, time, types
name, call, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sk = importlib.import_module(name)
base, tick = time.time_ns(), itertools.count()
clock = types.SimpleNamespace(
    time_ns=lambda: base + next(tick) * 5000,
    perf_counter=time.perf_counter, monotonic=time.monotonic, time=time.time,
)
for sub in ("_ids", "_client", "_instrument"):
    module = importlib.import_module(f"{name}.{sub}")
    if hasattr(module, "time"):
        module.time = clock
client = sk.Client("bench", exporters=[sk.MemoryExporter()], secret="x" * 32,
                   max_queue=10_000_000, max_queue_bytes=1 << 40, delivery="sync")
with client.exposure("reply-draft", model="gpt-x", model_version="v1", user_id="u") as exp:
    pass
token = exp.token

@client.recommendation("reply-draft", model="gpt-x", model_version="v1")
def recommend(x):
    return x

a = "Thanks for writing in, we will refund you today."
b = "Thanks for writing in; we'll refund you today!"
calls = {
    "action": lambda: client.action(exp),
    "token": lambda: client.action(token),
    "correction": lambda: client.correction(token, a, b),
    "toggle": lambda: client.toggle(token, "expanded"),
    "outcome": lambda: client.outcome(token, "purchase", value=10.0),
    "decorator": lambda: recommend(1),
    "nothing": lambda: None,
}
fn = calls[call]
for _ in range(200):
    if fn() is None and call not in ("nothing", "decorator"):
        raise SystemExit(f"{call} recorded nothing: {client.stats}")
client._pipeline._queue.clear()
gc.disable()
for _ in range(n):
    fn()
os._exit(0)  # not the teardown: freeing n events would be counted
"""


def count(python: str, path: Path, name: str, call: str, n: int) -> int:
    env = dict(os.environ, PYTHONPATH=str(path))
    out = subprocess.run(
        [
            *("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"),
            *(python, "-c", CHILD, name, call, str(n)),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    found = re.search(r"Collected : ([\d,]+)", out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"{name} {call}: valgrind run failed\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_call(path: Path, name: str, call: str, small: int, large: int) -> float:
    python = sys.executable
    return (count(python, path, name, call, large) - count(python, path, name, call, small)) / (
        large - small
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", help="also count this git commit (e.g. HEAD~1), side by side")
    p.add_argument("--calls", default=",".join(CALLS), help="comma-separated: " + ",".join(CALLS))
    p.add_argument("--small", type=int, default=1000)
    p.add_argument("--large", type=int, default=6000)
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    sides = [("working tree", ROOT / "src", "signalkit")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.ref:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.ref, "src/signalkit"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            # the package imports itself relatively, so a renamed copy loads beside the tree's
            (Path(tmp) / "src" / "signalkit").rename(Path(tmp) / "signalkit_ref")
            sides.append((args.ref, Path(tmp), "signalkit_ref"))
        header = f"{'call':12s}" + "".join(f"{label:>16s}" for label, _, _ in sides)
        print("instructions per call" + (" (change vs the ref)" if args.ref else ""))
        print(header + ("      change" if args.ref else ""))
        for call in args.calls.split(","):
            counts = [per_call(path, name, call, args.small, args.large) for _, path, name in sides]
            line = f"{call:12s}" + "".join(f"{c:16,.0f}" for c in counts)
            if args.ref and counts[1]:
                line += f"  {counts[0] / counts[1] - 1:+9.1%}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
