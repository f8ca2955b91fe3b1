"""``signalkit report`` over millions of events: time and peak memory.

Writes N events (default 5,000,000) as JSONL in signalkit's own format — exposures of three
model versions, with accepts, clicks, dismissals, corrections, toggles, feedback and outcomes,
ids as UUIDv7-like strings, a few duplicates and malformed lines — then runs the report in a
child process (``signalkit report FILE --format json``) and reads its peak RSS from
``resource.getrusage(RUSAGE_CHILDREN)``.

    uv run python benchmarks/report_scale.py                 # 5M events, file kept in /tmp
    uv run python benchmarks/report_scale.py --events 500000 --keep

The budget (issue #5): under 30 s and under 2 GB on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

T0_MS = 1_790_000_000_000
VERSIONS = ("2026-09-01", "2026-10-01", "2026-11-01")
ACT = {"2026-09-01": 0.45, "2026-10-01": 0.5, "2026-11-01": 0.6}


def _iso(ms: int) -> str:
    s, m = divmod(ms, 1000)
    t = time.gmtime(s)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{m:03d}000Z"


def _line(
    kind: str, eid: str, xid: str, ts: int, version: str, seq: int, strength: float,
    polarity: float, extra: str,
) -> str:  # fmt: skip
    return (
        f'{{"schema_version":1,"id":"{eid}","ts":"{_iso(ts)}","service":"bench",'
        f'"exposure_id":"{xid}","producer_id":"b3c4d5e6f7a8b9c0","seq":{seq},'
        f'"subject":{{"user_id":"user-{seq % 50000:05d}","anonymous_id":null,'
        f'"session_id":null,"tenant_id":null}},"model":{{"name":"ranker",'
        f'"version":"{version}","variant":null}},"trace_id":null,"span_id":null,'
        f'"attributes":{{"topic":"t{seq % 7}"}},"score":{{"strength":{strength},'
        f'"polarity":{polarity},"reasons":[{{"factor":"base","effect":{strength},'
        f'"note":"benchmark"}}],"policy":"default@1"}},"kind":"{kind}"{extra}}}\n'
    )


def generate(path: Path, n: int, seed: int = 1) -> int:
    """Write about ``n`` events to ``path``; returns the number of lines written."""
    rng = random.Random(seed)
    written = 0
    seq = 0
    buf: list[str] = []
    with path.open("w", encoding="utf-8") as f:
        while written < n:
            seq += 1
            version = VERSIONS[seq % 3]
            ts = T0_MS + seq * 500
            xid = f"01{seq:014x}-7000-8000-{seq:012x}"
            items = ',"items":[],"latency_ms":12.5,"surface":"search"'
            buf.append(_line("exposure", xid, xid, ts, version, seq, 0.0, 0.0, items))
            written += 1
            r = rng.random()
            k = 0

            def sig(
                kind: str, dt: int, s: float, p: float, extra: str,
                seq: int = seq, xid: str = xid, ts: int = ts, version: str = version,
            ) -> None:  # fmt: skip
                nonlocal k, written
                k += 1
                eid = f"02{seq:014x}-7{k:03x}-8000-{seq:012x}"
                buf.append(_line(kind, eid, xid, ts + dt, version, seq, s, p, extra))
                written += 1

            if r < ACT[version]:
                dt = int(rng.lognormvariate(8.5, 1.0))
                act = "accepted" if rng.random() < 0.7 else "clicked"
                sig("action", dt, 0.55, 1.0,
                    f',"action":"{act}","item_id":null,"time_to_action_ms":{dt}.0')  # fmt: skip
            elif r < 0.8:
                dt = int(rng.lognormvariate(9.0, 1.0))
                sim = round(rng.random(), 4)
                sig("correction", dt, 0.75, 0.2,
                    f',"original":"draft text","corrected":"edited text","edit_distance":5,'
                    f'"similarity":{sim},"time_to_action_ms":{dt}.0')  # fmt: skip
            elif r < 0.9:
                sig("action", 3000, 0.3, -1.0,
                    ',"action":"dismissed","item_id":null,"time_to_action_ms":3000.0')  # fmt: skip
            if rng.random() < 0.3:
                sig("toggle", 1500, 0.25, 1.0,
                    ',"state":"expanded","element":"why","dwell_ms":null,'
                    '"time_to_action_ms":1500.0')  # fmt: skip
            if rng.random() < 0.35:
                ok = "true" if rng.random() < 0.6 else "false"
                sig("outcome", 3_600_000, 0.9, 1.0 if ok == "true" else -1.0,
                    f',"name":"purchase","value":{rng.randint(5, 80)}.0,"success":{ok},'
                    f'"delay_ms":3600000.0')  # fmt: skip
            if rng.random() < 0.05:
                sig("feedback", 9000, 0.85, 1.0,
                    ',"rating":1.0,"scale":[-1.0,1.0],"choice":null,"comment":null,'
                    '"time_to_action_ms":9000.0')  # fmt: skip
            if seq % 100_000 == 0:
                buf.append(buf[-1])  # a duplicate (an at-least-once redelivery)
                buf.append('{"id": "truncated line\n')  # a malformed line
                written += 2
            if len(buf) >= 20_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--path", type=Path, default=Path("/tmp/signalkit-report-scale.jsonl"))
    parser.add_argument("--keep", action="store_true", help="reuse the file if it exists")
    args = parser.parse_args()
    if not (args.keep and args.path.exists()):
        start = time.monotonic()
        lines = generate(args.path, args.events)
        print(f"generated {lines:,} lines, {args.path.stat().st_size / 1e9:.2f} GB "
              f"in {time.monotonic() - start:.1f} s")  # fmt: skip
    cmd = [sys.executable, "-m", "signalkit.cli", "report", str(args.path), "--format", "json"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = usage.ru_maxrss / 1024
    cpu_s = usage.ru_utime + usage.ru_stime  # what the load of other processes cannot inflate
    load = os.getloadavg()[0]
    if proc.returncode != 0:
        print(proc.stderr)
        return 1
    report = json.loads(proc.stdout)
    src = report["source"]
    print(
        f"report: {elapsed:.1f} s, peak RSS {peak_mb:,.0f} MB, {src['lines']:,} lines, "
        f"{src['events']:,} events, {src['duplicates']:,} duplicates, "
        f"{src['malformed']['count']:,} malformed; cpus {os.cpu_count()}"
    )
    print(f"  CPU {cpu_s:.1f} s (user + system); load average {load:.2f} at the end")
    for g in report["groups"]:
        m = g["metrics"]
        print(
            f"  {g['label']}: {g['exposures']:,} exposures, act-on "
            f"{100 * m['act_on_rate']['value']:.2f}%, p50 tta "
            f"{m['time_to_action_p50_ms']['value'] / 1000:.1f} s"
        )
    verdict = "PASS" if elapsed < 30 and peak_mb < 2048 else "FAIL"
    print(f"{verdict}: budget 30 s and 2048 MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
