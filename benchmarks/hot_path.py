"""Caller-thread cost of signalkit's recording calls, against floors and two peer SDKs.

Run it from the repository root with one command (the peers are pulled in for this run only,
they are never dependencies of signalkit):

    uv run --with posthog --with segment-analytics-python python benchmarks/hot_path.py

Options: ``--n 100000`` timed calls per series, ``--warmup 2000`` untimed calls first,
``--chunk 2000`` calls between two flushes, ``--json PATH`` to also write the results,
``--skip-peers`` to run without PostHog/Segment (their rows and ratios are then missing).
It takes a few minutes on a 2-core machine.

What is measured, for each series, is the wall time the *calling thread* spends in one call:

* ``time.perf_counter_ns()`` is read right before and right after each call; the median cost of
  an empty timed region (the two timer reads and the store, measured in the same run) is
  subtracted. Only ``deque.append``, a ~30 ns operation the timer cannot resolve, is timed in
  unrolled chunks of 10 calls divided by 10 (so its p99 is that of a 10-call mean).
* Each series is warmed up, then ``gc.collect()`` runs, then the timed calls run in chunks of
  ``--chunk``; between chunks, outside the timed region, every queue is flushed (signalkit:
  ``client.flush()`` and the MemoryExporter cleared; PostHog: ``flush()``; Segment:
  ``flush()``), so no queue ever fills and no event is dropped. Drops are counted and printed
  anyway: signalkit's ``client.stats`` (must be 0), PostHog's ``capture()`` returning None,
  Segment's ``track()`` returning False, and what the local sink received.
* The garbage collector stays on during the timed calls and background threads keep running:
  gen-0 collections and GIL hand-offs to a worker thread are part of what a caller pays, and
  they show up in p99.

Series:

* signalkit ``action`` with an ``Exposure`` handle, and with a token string. Tokens rotate
  through 1000 distinct ones: ``TokenSigner`` caches the claims of up to 4096 verified tokens,
  so after warm-up that row is the *cache-hit* path. A second token row uses a never-seen token
  on every call (HMAC verification each time: the *cache-miss* path, the usual case for a
  token sent to a browser and used once).
* ``correction`` (58-character texts, a one-word edit), ``toggle(..., "expanded")`` and
  ``outcome(..., "purchase", value=1.0, success=True)``, each with a (cached) token.
* the ``@client.recommendation(...)`` decorator: decorated call minus bare call, both measured.
* floors: ``deque.append`` of a dict equivalent to an ActionEvent, and pydantic v2
  ``model_validate`` of a BaseModel with ActionEvent's fields (nested subject, model, score)
  from that dict.
* peers, each pointed at a local HTTP sink (``http.server`` on 127.0.0.1, run in a child
  process so its work does not share this process's GIL), in their default async queue mode:
  PostHog ``capture()`` and Segment analytics-python ``track()``.
* ``import signalkit`` in a fresh interpreter (median of 5 runs), and whether it pulled in
  ``opentelemetry`` or ``httpx`` (it must not).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

# ---------------------------------------------------------------------------------------------
# The local HTTP sink (runs in a child process: `python hot_path.py --_sink`).
# ---------------------------------------------------------------------------------------------


def _sink_main() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    counts: dict[str, int] = {}
    requests_seen: dict[str, int] = {}
    lock = threading.Lock()

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real ingestion endpoint

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            n = 0
            try:
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    raw = gzip.decompress(raw)
                n = len(json.loads(raw).get("batch", ()))
            except Exception:
                n = -1
            with lock:
                counts[self.path] = counts.get(self.path, 0) + max(n, 0)
                requests_seen[self.path] = requests_seen.get(self.path, 0) + 1
            # PostHog's /batch/ answers {"status": 1}; Segment's /v1/batch answers {}.
            self._reply(b"{}" if self.path.startswith("/v1/") else b'{"status":1}')

        def do_GET(self) -> None:
            with lock:
                body = json.dumps({"events": counts, "requests": requests_seen}).encode()
            self._reply(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    # Stop on our own when the parent goes away (stdin closes) or after an hour at most.
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    threading.Timer(3600, server.shutdown).start()
    server.serve_forever()


class LocalSink:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--_sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def received(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            result: dict[str, Any] = json.loads(r.read())
            return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------

pc = time.perf_counter_ns
Run = Callable[[int, int, list[int]], None]


def timer_overhead(n: int) -> dict[str, float]:
    """Cost of an empty timed region: two timer reads and the store (what each sample carries)."""
    out = [0] * n

    def run(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t0 = pc()
            t1 = pc()
            out[i] = t1 - t0

    run(0, n, out)
    gc.collect()
    run(0, n, out)
    s = sorted(out)
    return {"median_ns": float(statistics.median(s)), "p99_ns": float(s[math.ceil(0.99 * n) - 1])}


def measure(
    name: str,
    run: Run,
    *,
    n: int,
    warmup: int,
    chunk: int,
    overhead_ns: float,
    inner: int = 1,
    between: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Time ``run`` (which times each of its iterations itself) and summarise in microseconds."""
    scratch = [0] * warmup
    run(0, warmup, scratch)
    if between is not None:
        between()
    out = [0] * n
    cpu_ns = 0
    gc.collect()
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        c0 = time.thread_time_ns()
        run(lo, hi, out)
        cpu_ns += time.thread_time_ns() - c0
        if between is not None:
            between()
    per_call = sorted((t - overhead_ns) / inner / 1000.0 for t in out)
    calls = n * inner
    result = {
        "name": name,
        "calls": calls,
        "samples": n,
        "calls_per_sample": inner,
        "median_us": statistics.median(per_call),
        "p99_us": per_call[math.ceil(0.99 * n) - 1],
        "mean_us": statistics.fmean(per_call),
        # CPU time of this thread per call (timer overhead included, so slightly high): when it
        # is well below the mean wall time, the caller was waiting (GIL, a lock), not working.
        "cpu_mean_us": cpu_ns / calls / 1000.0,
    }
    print(
        f"  {name:<44} median {result['median_us']:8.2f} µs   p99 {result['p99_us']:8.2f} µs",
        file=sys.stderr,
        flush=True,
    )
    return result


# ---------------------------------------------------------------------------------------------
# signalkit
# ---------------------------------------------------------------------------------------------

ORIGINAL = "Thanks for reaching out! Your refund was issued on Monday."
CORRECTED = "Thanks for reaching out! Your refund was issued on Tuesday."
ROTATE = 1000


def bench_signalkit(args: argparse.Namespace, overhead_ns: float) -> tuple[list[dict], dict]:
    import signalkit

    memory = signalkit.MemoryExporter()
    total = 10 * (args.n + args.warmup) + 4 * ROTATE
    client = signalkit.Client(
        "bench",
        exporters=[memory],
        secret="x" * 32,
        max_queue=max(total, 10_000),  # never full: flushed every --chunk calls anyway
        max_queue_bytes=1 << 40,
    )

    def between() -> None:
        if not client.flush(timeout=60):
            raise RuntimeError("signalkit flush timed out")
        memory.clear()

    expected = 0  # events the run must record (checked against client.stats at the end)
    exposures = []
    for i in range(ROTATE):
        with client.exposure(
            "reply-draft", model="gpt-x", model_version="2026-11-01", user_id=f"user-{i}"
        ) as exp:
            pass
        exposures.append(exp)
    expected += ROTATE
    tokens = [e.token for e in exposures]
    between()
    m = ROTATE
    kw = dict(n=args.n, warmup=args.warmup, chunk=args.chunk, overhead_ns=overhead_ns)
    rows: list[dict] = []

    # -- action, Exposure handle
    action = client.action

    def run_action_exp(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            e = exposures[i % m]
            t0 = pc()
            action(e, "accepted")
            t1 = pc()
            out[i] = t1 - t0

    rows.append(measure("signalkit action(Exposure)", run_action_exp, between=between, **kw))

    # -- action, token (1000 rotating tokens: verification cache hits)
    def run_action_tok(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t = tokens[i % m]
            t0 = pc()
            action(t, "accepted")
            t1 = pc()
            out[i] = t1 - t0

    rows.append(measure("signalkit action(token, cached)", run_action_tok, between=between, **kw))

    # -- action, a token never seen before on every call (verification cache misses)
    fresh: list[str] = []
    for _ in range(args.n + args.warmup):
        fresh.append(
            client.exposure("reply-draft", model="gpt-x", model_version="2026-11-01").token
        )
    pos = [0]

    def run_action_fresh(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        k = pos[0]
        for i in range(lo, hi):
            t = fresh[k]
            k += 1
            t0 = pc()
            action(t, "accepted")
            t1 = pc()
            out[i] = t1 - t0
        pos[0] = k

    rows.append(
        measure("signalkit action(token, uncached)", run_action_fresh, between=between, **kw)
    )
    del fresh

    # -- correction, toggle, outcome (cached tokens)
    correction = client.correction

    def run_correction(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t = tokens[i % m]
            t0 = pc()
            correction(t, ORIGINAL, CORRECTED)
            t1 = pc()
            out[i] = t1 - t0

    rows.append(measure("signalkit correction(token, 58 chars)", run_correction, between=between,
                        **kw))

    toggle = client.toggle

    def run_toggle(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t = tokens[i % m]
            t0 = pc()
            toggle(t, "expanded")
            t1 = pc()
            out[i] = t1 - t0

    rows.append(measure("signalkit toggle(token, expanded)", run_toggle, between=between, **kw))

    outcome = client.outcome

    def run_outcome(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t = tokens[i % m]
            t0 = pc()
            outcome(t, "purchase", value=1.0, success=True)
            t1 = pc()
            out[i] = t1 - t0

    rows.append(measure("signalkit outcome(token, purchase)", run_outcome, between=between, **kw))
    expected += 6 * (args.n + args.warmup)

    # -- the decorator: decorated call minus bare call
    def recommend(x: int) -> int:
        return x

    decorated = client.recommendation("reply-draft", model="gpt-x", model_version="2026-11-01")(
        recommend
    )

    def run_bare(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        f = recommend
        for i in range(lo, hi):
            t0 = pc()
            f(i)
            t1 = pc()
            out[i] = t1 - t0

    def run_decorated(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        f = decorated
        for i in range(lo, hi):
            t0 = pc()
            f(i)
            t1 = pc()
            out[i] = t1 - t0

    bare = measure("bare function call", run_bare, between=between, **kw)
    deco = measure("@client.recommendation(...) call", run_decorated, between=between, **kw)
    expected += args.n + args.warmup
    overhead = {
        "name": "recommendation decorator overhead",
        "calls": deco["calls"],
        "median_us": deco["median_us"] - bare["median_us"],
        "p99_us": deco["p99_us"] - bare["p99_us"],
        "mean_us": deco["mean_us"] - bare["mean_us"],
        "cpu_mean_us": deco["cpu_mean_us"] - bare["cpu_mean_us"],
        "note": "decorated call minus bare call (medians; p99 is the difference of the p99s)",
    }
    rows += [bare, deco, overhead]

    client.flush(timeout=60)
    st = client.stats
    client.shutdown(timeout=10)
    check = {
        "recorded": st.recorded,
        "expected_recorded": expected,
        "rejected": dict(st.rejected),
        "dropped": dict(st.dropped),
        "total_dropped": st.total_dropped,
        "opentelemetry.trace_imported_during_run": "opentelemetry.trace" in sys.modules,
    }
    return rows, check


# ---------------------------------------------------------------------------------------------
# Floors: deque.append and pydantic validation of an ActionEvent-equivalent model
# ---------------------------------------------------------------------------------------------


def _floor_model() -> type:
    from pydantic import BaseModel, ConfigDict, Field

    frozen = ConfigDict(frozen=True, extra="forbid")

    class FReason(BaseModel):
        model_config = frozen
        factor: str
        effect: float
        note: str = ""

    class FScore(BaseModel):
        model_config = frozen
        strength: Annotated[float, Field(ge=0.0, le=1.0)]
        polarity: Annotated[float, Field(ge=-1.0, le=1.0)]
        reasons: tuple[FReason, ...] = ()
        policy: str = ""

    class FSubject(BaseModel):
        model_config = frozen
        user_id: str | None = None
        anonymous_id: str | None = None
        session_id: str | None = None
        tenant_id: str | None = None

    class FModelRef(BaseModel):
        model_config = frozen
        name: str | None = None
        version: str | None = None
        variant: str | None = None

    class FActionEvent(BaseModel):
        model_config = frozen
        schema_version: int = 1
        id: str
        ts: datetime
        service: str
        exposure_id: str
        producer_id: str
        seq: int
        subject: FSubject = FSubject()
        model: FModelRef = FModelRef()
        trace_id: str | None = None
        span_id: str | None = None
        attributes: dict[str, str | int | float | bool] = {}
        score: FScore | None = None
        time_to_action_ms: float | None = None
        kind: Literal["action"] = "action"
        action: str
        item_id: str | None = None

    return FActionEvent


def _sample_action_dict() -> dict[str, Any]:
    """A real ActionEvent as a dict (nested subject, model and score with its reasons)."""
    import signalkit

    mem = signalkit.MemoryExporter()
    c = signalkit.Client("bench", exporters=[mem], secret="x" * 32)
    with c.exposure("reply-draft", model="gpt-x", model_version="2026-11-01",
                    user_id="user-1") as exp:
        pass
    ev = c.action(exp.token, "accepted")
    assert ev is not None
    c.shutdown(timeout=5)
    d: dict[str, Any] = ev.model_dump()
    return d


def bench_floors(args: argparse.Namespace, overhead_ns: float) -> tuple[list[dict], dict]:
    import signalkit

    model = _floor_model()
    theirs = set(signalkit.ActionEvent.model_fields)
    ours = set(model.model_fields)  # type: ignore[attr-defined]
    info = {
        "floor_model_fields_match_ActionEvent": theirs == ours,
        "fields_only_in_ActionEvent": sorted(theirs - ours),
        "fields_only_in_floor_model": sorted(ours - theirs),
    }
    d = _sample_action_dict()
    model.model_validate(d)  # type: ignore[attr-defined]  # must validate
    kw = dict(n=args.n, warmup=args.warmup, chunk=args.chunk, overhead_ns=overhead_ns)
    rows = []

    dq: deque[dict[str, Any]] = deque()
    inner = 10

    def run_deque(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        append = dq.append
        for i in range(lo, hi):
            t0 = pc()
            append(d)
            append(d)
            append(d)
            append(d)
            append(d)
            append(d)
            append(d)
            append(d)
            append(d)
            append(d)
            t1 = pc()
            out[i] = t1 - t0

    # n samples of 10 calls: 10 x n calls in all.
    rows.append(measure("floor: deque.append(dict)", run_deque, inner=inner,
                        between=dq.clear, **kw))

    validate = model.model_validate  # type: ignore[attr-defined]

    def run_pydantic(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t0 = pc()
            validate(d)
            t1 = pc()
            out[i] = t1 - t0

    rows.append(measure("floor: pydantic model_validate(dict)", run_pydantic, **kw))
    return rows, info


# ---------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------


def bench_peers(args: argparse.Namespace, overhead_ns: float) -> tuple[list[dict], dict]:
    try:
        import posthog
        import segment.analytics as segment_analytics
    except ImportError as exc:
        print(f"peers skipped: {exc} (run with --with posthog --with segment-analytics-python)",
              file=sys.stderr)
        return [], {"skipped": str(exc)}

    sink = LocalSink()
    kw = dict(n=args.n, warmup=args.warmup, chunk=args.chunk, overhead_ns=overhead_ns)
    exposure_ids = [f"0190c0de-0000-7000-8000-{i:012d}" for i in range(ROTATE)]
    users = [f"user-{i}" for i in range(ROTATE)]
    m = ROTATE
    rows = []
    info: dict[str, Any] = {"sink": sink.url}
    try:
        # -- PostHog: default async mode (queue of 10,000, one consumer thread, batches of 100)
        ph = posthog.Posthog("phc_benchmark", host=sink.url)
        ph_dropped = [0]

        def ph_between() -> None:
            ph.flush()

        def run_posthog(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            capture = ph.capture
            dropped = 0
            for i in range(lo, hi):
                j = i % m
                eid, uid = exposure_ids[j], users[j]
                t0 = pc()
                r = capture("accepted", distinct_id=uid,
                            properties={"exposure_id": eid, "action": "accepted"})
                t1 = pc()
                out[i] = t1 - t0
                if r is None:
                    dropped += 1
            ph_dropped[0] += dropped

        rows.append(measure("posthog capture()", run_posthog, between=ph_between, **kw))
        ph.shutdown()

        # -- Segment analytics-python: default async mode (queue of 10,000, one consumer thread)
        sg = segment_analytics.Client("benchmark-write-key", host=sink.url)
        sg_dropped = [0]

        def run_segment(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            track = sg.track
            dropped = 0
            for i in range(lo, hi):
                j = i % m
                eid, uid = exposure_ids[j], users[j]
                t0 = pc()
                ok, _ = track(user_id=uid, event="accepted",
                              properties={"exposure_id": eid, "action": "accepted"})
                t1 = pc()
                out[i] = t1 - t0
                if not ok:
                    dropped += 1
            sg_dropped[0] += dropped

        rows.append(measure("segment track()", run_segment, between=sg.flush, **kw))
        sg.shutdown()

        time.sleep(0.2)
        got = sink.received()
        sent = args.n + args.warmup
        ph_recv = sum(v for k, v in got["events"].items() if "batch" in k and "/v1/" not in k)
        sg_recv = got["events"].get("/v1/batch", 0)
        info.update(
            {
                "posthog_version": getattr(posthog, "VERSION", "?"),
                "segment_version": getattr(segment_analytics, "VERSION", "?"),
                "posthog_sent": sent,
                "posthog_dropped_by_capture": ph_dropped[0],
                "posthog_received_by_sink": ph_recv,
                "segment_sent": sent,
                "segment_dropped_by_track": sg_dropped[0],
                "segment_received_by_sink": sg_recv,
                "sink_stats": got,
            }
        )
    finally:
        sink.close()
    return rows, info


# ---------------------------------------------------------------------------------------------
# import signalkit
# ---------------------------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import signalkit
t1 = time.perf_counter()
heavy = sorted({m.split('.')[0] for m in sys.modules} & {'opentelemetry', 'httpx'})
print(json.dumps({"seconds": t1 - t0, "heavy": heavy}))
"""


def bench_import(runs: int = 5) -> dict[str, Any]:
    times, heavy = [], set()
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, check=True
        ).stdout
        r = json.loads(out)
        times.append(r["seconds"] * 1000)
        heavy.update(r["heavy"])
    return {
        "runs_ms": [round(t, 1) for t in times],
        "median_ms": statistics.median(times),
        "heavy_modules_after_import": sorted(heavy),
    }


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

TARGET_PEER_FRACTION = 1 / 6
TARGET_PYDANTIC_RATIO = 2.0
TARGET_DECORATOR_US = 5.0


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import pydantic

    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pydantic": pydantic.VERSION,
    }


def report(results: dict[str, Any]) -> str:
    rows = results["rows"]
    by = {r["name"]: r for r in rows}
    peers = [r for r in rows if r["name"] in ("posthog capture()", "segment track()")]
    faster = min(peers, key=lambda r: r["median_us"]) if peers else None
    floor = by.get("floor: pydantic model_validate(dict)")

    def ratio(v: float, ref: dict | None) -> str:
        return f"{v / ref['median_us']:.2f}x" if ref and ref["median_us"] > 0 else "-"

    lines = []
    head = (f"| {'call':<44} | {'median µs':>9} | {'p99 µs':>8} | {'mean µs':>8} | "
            f"{'CPU µs':>7} | {'vs faster peer':>14} | {'vs pydantic floor':>17} |")
    lines.append(head)
    lines.append("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        lines.append(
            f"| {r['name']:<44} | {r['median_us']:9.2f} | {r['p99_us']:8.2f} | "
            f"{r['mean_us']:8.2f} | {r['cpu_mean_us']:7.2f} | "
            f"{ratio(r['median_us'], faster):>14} | {ratio(r['median_us'], floor):>17} |"
        )
    lines.append("")
    lines.append(
        f"timer: perf_counter_ns around each call; empty-region overhead "
        f"{results['timer_overhead']['median_ns']:.0f} ns (median) subtracted from every sample; "
        f"deque.append timed in chunks of 10. 'CPU µs' = this thread's CPU time per call "
        f"(thread_time_ns per chunk, timer reads included)."
    )
    if faster:
        lines.append(f"faster peer: {faster['name']} ({faster['median_us']:.2f} µs median)")

    verdicts = []
    sk_rows = [r for r in rows if r["name"].startswith("signalkit ")]
    for r in sk_rows:
        parts = []
        ok = True
        if faster:
            limit = faster["median_us"] * TARGET_PEER_FRACTION
            good = r["median_us"] <= limit
            ok &= good
            parts.append(f"<= 1/6 of {faster['name']} ({limit:.2f} µs): "
                         f"{'yes' if good else 'NO'}")
        if floor:
            limit = floor["median_us"] * TARGET_PYDANTIC_RATIO
            good = r["median_us"] <= limit
            ok &= good
            parts.append(f"<= 2x pydantic floor ({limit:.2f} µs): {'yes' if good else 'NO'}")
        verdicts.append((r["name"], r["median_us"], ok, "; ".join(parts)))
    deco = by.get("recommendation decorator overhead")
    if deco:
        good = deco["median_us"] < TARGET_DECORATOR_US
        verdicts.append((deco["name"], deco["median_us"], good,
                         f"< {TARGET_DECORATOR_US:.0f} µs: {'yes' if good else 'NO'}"))
    lines.append("")
    lines.append("verdicts (on medians):")
    for name, med, ok, text in verdicts:
        lines.append(f"  [{'PASS' if ok else 'FAIL'}] {name} = {med:.2f} µs — {text}")
    results["verdicts"] = [
        {"name": n, "median_us": m, "pass": ok, "detail": t} for n, m, ok, t in verdicts
    ]

    sk = results["signalkit_check"]
    lines.append("")
    lines.append(
        f"signalkit stats: recorded {sk['recorded']} (expected {sk['expected_recorded']}), "
        f"rejected {sk['rejected'] or 0}, dropped {sk['dropped'] or 0}"
        f" -> {'OK' if sk['total_dropped'] == 0 and not sk['rejected'] and sk['recorded'] == sk['expected_recorded'] else 'NOT OK'}"
    )
    lines.append(f"opentelemetry.trace imported during the signalkit run: "
                 f"{sk['opentelemetry.trace_imported_during_run']}")
    fl = results["floor_check"]
    lines.append(f"floor model has ActionEvent's fields: {fl['floor_model_fields_match_ActionEvent']}"
                 + ("" if fl["floor_model_fields_match_ActionEvent"] else
                    f" (only in ActionEvent: {fl['fields_only_in_ActionEvent']}, "
                    f"only in floor: {fl['fields_only_in_floor_model']})"))
    pi = results.get("peers_check", {})
    if "posthog_sent" in pi:
        lines.append(
            f"posthog {pi['posthog_version']}: sent {pi['posthog_sent']}, capture() dropped "
            f"{pi['posthog_dropped_by_capture']}, sink received {pi['posthog_received_by_sink']}"
        )
        lines.append(
            f"segment {pi['segment_version']}: sent {pi['segment_sent']}, track() dropped "
            f"{pi['segment_dropped_by_track']}, sink received {pi['segment_received_by_sink']}"
        )
    elif "skipped" in pi:
        lines.append(f"peers skipped: {pi['skipped']}")
    imp = results["import"]
    lines.append(
        f"import signalkit (fresh interpreter, median of {len(imp['runs_ms'])}): "
        f"{imp['median_ms']:.0f} ms {imp['runs_ms']}; opentelemetry/httpx loaded: "
        f"{imp['heavy_modules_after_import'] or 'none'}"
    )
    mach = results["machine"]
    lines.append(
        f"machine: {mach['nproc']} CPUs ({mach['cpu']}), Python {mach['python']}, "
        f"pydantic {mach['pydantic']}; n={results['params']['n']} timed calls per series "
        f"(deque: {results['params']['n']} samples of 10), warm-up {results['params']['warmup']}, "
        f"flush every {results['params']['chunk']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--_sink"]:
        _sink_main()
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="timed calls per series (100000)")
    p.add_argument("--warmup", type=int, default=2_000, help="untimed calls first (2000)")
    p.add_argument("--chunk", type=int, default=2_000,
                   help="calls between two flushes, outside the timed region (2000)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--skip-peers", action="store_true", help="do not run PostHog and Segment")
    args = p.parse_args(argv)
    if args.n < 1 or args.warmup < 0 or args.chunk < 1:
        p.error("--n and --chunk must be >= 1, --warmup >= 0")

    # Exporters of the default client never run here, but keep any stray file out of the repo.
    os.environ.setdefault("SIGNALKIT_DIR", tempfile.mkdtemp(prefix="signalkit-bench-"))
    t_start = time.monotonic()
    print("import signalkit (fresh interpreters)...", file=sys.stderr, flush=True)
    imp = bench_import()
    overhead = timer_overhead(max(args.n, 10_000))
    print(f"timer overhead: {overhead['median_ns']:.0f} ns median", file=sys.stderr, flush=True)

    print("signalkit:", file=sys.stderr, flush=True)
    sk_rows, sk_check = bench_signalkit(args, overhead["median_ns"])
    print("floors:", file=sys.stderr, flush=True)
    fl_rows, fl_check = bench_floors(args, overhead["median_ns"])
    peer_rows: list[dict] = []
    peer_check: dict[str, Any] = {"skipped": "--skip-peers"}
    if not args.skip_peers:
        print("peers:", file=sys.stderr, flush=True)
        peer_rows, peer_check = bench_peers(args, overhead["median_ns"])

    results: dict[str, Any] = {
        "params": {"n": args.n, "warmup": args.warmup, "chunk": args.chunk},
        "machine": machine(),
        "timer_overhead": overhead,
        "rows": sk_rows + fl_rows + peer_rows,
        "signalkit_check": sk_check,
        "floor_check": fl_check,
        "peers_check": peer_check,
        "import": imp,
    }
    text = report(results)
    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    print()
    print(text)
    print(f"\n(ran in {results['elapsed_s']:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"results written to {args.json}")
    ok_checks = (
        sk_check["total_dropped"] == 0
        and not sk_check["rejected"]
        and sk_check["recorded"] == sk_check["expected_recorded"]
    )
    return 0 if ok_checks else 1


if __name__ == "__main__":
    sys.exit(main())
