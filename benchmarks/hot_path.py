"""Caller-thread cost of signalkit's recording calls, against floors and two peer SDKs.

Run it from the repository root with one command (the peers are pulled in for this run only,
they are never dependencies of signalkit):

    uv run --with posthog --with segment-analytics-python python benchmarks/hot_path.py

Options: ``--n 100000`` timed calls per series, ``--warmup 2000`` untimed calls first,
``--chunk 2000`` calls between two flushes, ``--rounds`` (default n/chunk), ``--json PATH`` to
also write the results, ``--skip-peers`` to run without PostHog/Segment (their rows and ratios
are then missing). It takes about 4 minutes on a 2-core machine. Exit status 1 if signalkit
dropped or rejected anything (the numbers would then be of cheaper no-op calls).

What is measured, for each series, is the wall time the *calling thread* spends in one call:

* ``time.perf_counter_ns()`` is read right before and right after each call; the median cost of
  an empty timed region (the two timer reads and the store, measured in the same run, ~70 ns
  here) is subtracted. Only ``deque.append``, a ~20 ns operation the timer cannot resolve, is
  timed in unrolled chunks of 10 calls divided by 10 (so its p99 is that of a 10-call mean).
* Every series is warmed up first. Then the series are interleaved: each round runs one chunk
  (``--chunk`` calls) of every series, in an order rotated each round, with ``gc.collect()``
  before each series' chunk. A shared VM flips between a fast and a slow mode for seconds at a
  time; interleaving by chunk spreads that over all series alike. "best round" in the table is
  the lowest per-round median, the least disturbed stretch.
* Between chunks, outside the timed region, every queue is flushed (signalkit:
  ``client.flush()`` and the MemoryExporter cleared; PostHog: ``flush()``; Segment:
  ``flush()``), so no queue ever fills and no event is dropped. Drops are counted and printed
  anyway: signalkit's ``client.stats`` (must be 0, and ``recorded`` must equal the calls made),
  PostHog's ``capture()`` returning None, Segment's ``track()`` returning False, and the events
  the local sink received.
* The garbage collector stays on during the timed calls and background threads keep running:
  gen-0 collections and GIL hand-offs to a worker thread are part of what a caller pays, and
  they show up in p99. The "CPU µs" column (this thread's CPU time per call) tells working
  from waiting.

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
from dataclasses import dataclass, field
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
"""``run(lo, hi, out)`` makes calls lo..hi-1, timing each one itself into ``out[i]`` (ns)."""


@dataclass
class Series:
    name: str
    group: str  # "signalkit", "floor" or "peer"
    run: Run
    between: Callable[[], None] | None = None
    inner: int = 1  # calls per timed sample
    out: list[int] = field(default_factory=list)
    filled: int = 0
    cpu_ns: int = 0
    round_medians_us: list[float] = field(default_factory=list)


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


def spin(seconds: float) -> None:
    """Keep a core busy for a moment so the first series does not pay for a CPU waking up."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += sum(range(1000))


def run_interleaved(
    series: list[Series], *, n: int, warmup: int, chunk: int, rounds: int, overhead_ns: float
) -> None:
    """Warm every series up, then time them in ``rounds`` interleaved rounds.

    Each round gives every series n/rounds timed calls (by default one chunk, a fraction of a
    second), in an order rotated by one each round. A shared 2-core VM switches between a fast
    and a slow mode for seconds at a time (other processes, the sibling vCPU); fine interleaving
    spreads those modes over every series alike instead of over whichever ran then.
    """
    for s in series:
        scratch = [0] * warmup
        s.run(0, warmup, scratch)
        if s.between is not None:
            s.between()
        s.out = [0] * n
    sizes = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
    for r, size in enumerate(sizes):
        k = r % len(series)
        for s in series[k:] + series[:k]:
            gc.collect()
            lo, stop = s.filled, s.filled + size
            while lo < stop:
                hi = min(lo + chunk, stop)
                c0 = time.thread_time_ns()
                s.run(lo, hi, s.out)
                s.cpu_ns += time.thread_time_ns() - c0
                if s.between is not None:
                    s.between()  # flush queues: outside the timed region
                lo = hi
            part = s.out[s.filled : stop]
            s.round_medians_us.append((statistics.median(part) - overhead_ns) / s.inner / 1000)
            s.filled = stop
        if (r + 1) % max(1, rounds // 10) == 0 or r + 1 == rounds:
            print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)


def summarise(s: Series, overhead_ns: float) -> dict[str, Any]:
    n = len(s.out)
    per_call = sorted((t - overhead_ns) / s.inner / 1000.0 for t in s.out)
    calls = n * s.inner
    return {
        "name": s.name,
        "group": s.group,
        "calls": calls,
        "samples": n,
        "calls_per_sample": s.inner,
        "median_us": statistics.median(per_call),
        "p99_us": per_call[math.ceil(0.99 * n) - 1],
        "mean_us": statistics.fmean(per_call),
        # CPU time of this thread per call (timer reads included, so slightly high): well below
        # the mean wall time would mean the caller was waiting (GIL, a lock), not working.
        "cpu_mean_us": s.cpu_ns / calls / 1000.0,
        "round_medians_us": [round(v, 3) for v in s.round_medians_us],
    }


# ---------------------------------------------------------------------------------------------
# signalkit
# ---------------------------------------------------------------------------------------------

ORIGINAL = "Thanks for reaching out! Your refund was issued on Monday."
CORRECTED = "Thanks for reaching out! Your refund was issued on Tuesday."
ROTATE = 1000


class SignalkitBench:
    def __init__(self, n: int, warmup: int) -> None:
        import signalkit

        self.memory = signalkit.MemoryExporter()
        self.client = client = signalkit.Client(
            "bench",
            exporters=[self.memory],
            secret="x" * 32,
            max_queue=10_000_000,  # never full: the run flushes every --chunk calls anyway
            max_queue_bytes=1 << 40,
        )
        self.expected = 0  # events the run must record (checked against client.stats)
        self.exposures = []
        for i in range(ROTATE):
            with client.exposure(
                "reply-draft", model="gpt-x", model_version="2026-11-01", user_id=f"user-{i}"
            ) as exp:
                pass
            self.exposures.append(exp)
        self.expected += ROTATE
        self.tokens = [e.token for e in self.exposures]
        for t in self.tokens:  # the "cached" series must hit the verification cache at any --n
            client.verify(t)
        # Tokens never seen before, one per call of the "uncached" series (not recorded).
        self.fresh = [
            client.exposure("reply-draft", model="gpt-x", model_version="2026-11-01").token
            for _ in range(n + warmup)
        ]
        self.between()

    def between(self) -> None:
        if not self.client.flush(timeout=60):
            raise RuntimeError("signalkit flush timed out")
        self.memory.clear()

    def series(self, n: int, warmup: int) -> list[Series]:
        client, exposures, tokens, fresh = self.client, self.exposures, self.tokens, self.fresh
        m = ROTATE
        action, correction = client.action, client.correction
        toggle, outcome = client.toggle, client.outcome

        def action_exp(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            for i in range(lo, hi):
                e = exposures[i % m]
                t0 = pc()
                action(e, "accepted")
                t1 = pc()
                out[i] = t1 - t0

        def action_tok(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            for i in range(lo, hi):
                t = tokens[i % m]
                t0 = pc()
                action(t, "accepted")
                t1 = pc()
                out[i] = t1 - t0

        pos = [0]

        def action_fresh(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            k = pos[0]
            for i in range(lo, hi):
                t = fresh[k]
                k += 1
                t0 = pc()
                action(t, "accepted")
                t1 = pc()
                out[i] = t1 - t0
            pos[0] = k

        def correct(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            for i in range(lo, hi):
                t = tokens[i % m]
                t0 = pc()
                correction(t, ORIGINAL, CORRECTED)
                t1 = pc()
                out[i] = t1 - t0

        def expand(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            for i in range(lo, hi):
                t = tokens[i % m]
                t0 = pc()
                toggle(t, "expanded")
                t1 = pc()
                out[i] = t1 - t0

        def purchase(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            for i in range(lo, hi):
                t = tokens[i % m]
                t0 = pc()
                outcome(t, "purchase", value=1.0, success=True)
                t1 = pc()
                out[i] = t1 - t0

        def recommend(x: int) -> int:
            return x

        decorated = client.recommendation("reply-draft", model="gpt-x", model_version="2026-11-01")(
            recommend
        )

        def bare(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            f = recommend
            for i in range(lo, hi):
                t0 = pc()
                f(i)
                t1 = pc()
                out[i] = t1 - t0

        def wrapped(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            f = decorated
            for i in range(lo, hi):
                t0 = pc()
                f(i)
                t1 = pc()
                out[i] = t1 - t0

        b = self.between
        series = [
            Series("signalkit action(Exposure)", "signalkit", action_exp, b),
            Series("signalkit action(token, cached)", "signalkit", action_tok, b),
            Series("signalkit action(token, uncached)", "signalkit", action_fresh, b),
            Series("signalkit correction(token, 58 chars)", "signalkit", correct, b),
            Series("signalkit toggle(token, expanded)", "signalkit", expand, b),
            Series("signalkit outcome(token, purchase)", "signalkit", purchase, b),
            Series("bare function call", "decorator", bare, b),
            Series("@client.recommendation(...) call", "decorator", wrapped, b),
        ]
        self.expected += 7 * (n + warmup)  # six signal series and the decorated call
        return series

    def check(self) -> dict[str, Any]:
        self.client.flush(timeout=60)
        result: dict[str, Any] = {
            "expected_recorded": self.expected,
            "opentelemetry.trace_imported_during_run": "opentelemetry.trace" in sys.modules,
        }
        try:
            st = self.client.stats
            dropped = dict(st.dropped)
            result.update(
                recorded=st.recorded,
                rejected=dict(st.rejected),
                dropped=dropped,
                total_dropped=sum(dropped.values()),
            )
        except Exception as exc:  # without stats, the no-drop check cannot pass
            result.update(
                recorded=-1, rejected={"stats unavailable": repr(exc)}, dropped={}, total_dropped=-1
            )
        self.client.shutdown(timeout=10)
        return result


# ---------------------------------------------------------------------------------------------
# Floors: deque.append and pydantic validation of an ActionEvent-equivalent model
# ---------------------------------------------------------------------------------------------


def _floor_model() -> Any:
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
    """A real ActionEvent as a dict (nested subject, model, and score with its reasons)."""
    import signalkit

    c = signalkit.Client("bench-sample", exporters=[signalkit.MemoryExporter()], secret="x" * 32)
    with c.exposure(
        "reply-draft", model="gpt-x", model_version="2026-11-01", user_id="user-1"
    ) as exp:
        pass
    ev = c.action(exp.token, "accepted")
    assert ev is not None
    c.shutdown(timeout=5)
    d: dict[str, Any] = ev.model_dump()
    return d


def floor_series() -> tuple[list[Series], dict[str, Any]]:
    import signalkit

    model = _floor_model()
    theirs, ours = set(signalkit.ActionEvent.model_fields), set(model.model_fields)
    info = {
        "floor_model_fields_match_ActionEvent": theirs == ours,
        "fields_only_in_ActionEvent": sorted(theirs - ours),
        "fields_only_in_floor_model": sorted(ours - theirs),
    }
    d = _sample_action_dict()
    model.model_validate(d)  # must validate
    dq: deque[dict[str, Any]] = deque()

    def append10(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
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

    validate = model.model_validate

    def validated(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
        for i in range(lo, hi):
            t0 = pc()
            validate(d)
            t1 = pc()
            out[i] = t1 - t0

    return [
        Series("floor: deque.append(dict)", "floor", append10, dq.clear, inner=10),
        Series("floor: pydantic model_validate(dict)", "floor", validated),
    ], info


# ---------------------------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------------------------


class PeersBench:
    """PostHog and Segment clients in their default async mode, sending to a local sink."""

    def __init__(self) -> None:
        import posthog
        import segment.analytics as segment_analytics

        self.posthog_version = getattr(posthog, "VERSION", "?")
        self.segment_version = getattr(segment_analytics, "VERSION", "?")
        self.sink = LocalSink()
        # Defaults kept: max_queue_size 10,000, one consumer thread, batches of 100.
        self.ph = posthog.Posthog("phc_benchmark", host=self.sink.url)
        self.sg = segment_analytics.Client("benchmark-write-key", host=self.sink.url)
        self.sent = {"posthog": 0, "segment": 0}
        self.dropped = {"posthog": 0, "segment": 0}

    def series(self) -> list[Series]:
        exposure_ids = [f"0190c0de-0000-7000-8000-{i:012d}" for i in range(ROTATE)]
        users = [f"user-{i}" for i in range(ROTATE)]
        m = ROTATE
        capture, track = self.ph.capture, self.sg.track
        sent, dropped = self.sent, self.dropped

        def posthog_capture(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            lost = 0
            for i in range(lo, hi):
                j = i % m
                eid, uid = exposure_ids[j], users[j]
                t0 = pc()
                r = capture(
                    "accepted",
                    distinct_id=uid,
                    properties={"exposure_id": eid, "action": "accepted"},
                )
                t1 = pc()
                out[i] = t1 - t0
                if r is None:
                    lost += 1
            sent["posthog"] += hi - lo
            dropped["posthog"] += lost

        def segment_track(lo: int, hi: int, out: list[int], pc: Callable[[], int] = pc) -> None:
            lost = 0
            for i in range(lo, hi):
                j = i % m
                eid, uid = exposure_ids[j], users[j]
                t0 = pc()
                ok, _ = track(
                    user_id=uid,
                    event="accepted",
                    properties={"exposure_id": eid, "action": "accepted"},
                )
                t1 = pc()
                out[i] = t1 - t0
                if not ok:
                    lost += 1
            sent["segment"] += hi - lo
            dropped["segment"] += lost

        return [
            Series("posthog capture()", "peer", posthog_capture, self.ph.flush),
            Series("segment track()", "peer", segment_track, self.sg.flush),
        ]

    def check(self) -> dict[str, Any]:
        self.ph.shutdown()
        self.sg.shutdown()
        time.sleep(0.2)
        got = self.sink.received()
        events = got["events"]
        return {
            "sink": self.sink.url,
            "posthog_version": self.posthog_version,
            "segment_version": self.segment_version,
            "posthog_sent": self.sent["posthog"],
            "posthog_dropped_by_capture": self.dropped["posthog"],
            "posthog_received_by_sink": sum(v for k, v in events.items() if k != "/v1/batch"),
            "segment_sent": self.sent["segment"],
            "segment_dropped_by_track": self.dropped["segment"],
            "segment_received_by_sink": events.get("/v1/batch", 0),
            "sink_stats": got,
        }

    def close(self) -> None:
        self.sink.close()


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


def _import_runs(runs: int, env: dict[str, str]) -> tuple[list[float], set[str]]:
    times, heavy = [], set()
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        r = json.loads(out)
        times.append(r["seconds"] * 1000)
        heavy.update(r["heavy"])
    return times, heavy


def bench_import(runs: int = 5) -> dict[str, Any]:
    """``import signalkit`` in fresh interpreters: median of ``runs``.

    Measured with a bytecode cache (as after a normal install, which compiles .pyc files),
    kept under a temporary PYTHONPYCACHEPREFIX so that nothing is written into the project or
    its virtualenv; one untimed run fills it first. When this environment sets
    PYTHONDONTWRITEBYTECODE (every import then recompiles from source), that case is measured
    too, as it is what a process here actually pays.
    """
    cache = tempfile.mkdtemp(prefix="signalkit-bench-pycache-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    _import_runs(1, env)  # fill the cache
    times, heavy = _import_runs(runs, env)
    result: dict[str, Any] = {
        "runs_ms": [round(t, 1) for t in times],
        "median_ms": statistics.median(times),
        "heavy_modules_after_import": sorted(heavy),
    }
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        env2 = dict(os.environ)
        env2.pop("PYTHONPYCACHEPREFIX", None)
        times2, heavy2 = _import_runs(runs, env2)
        result["no_bytecode_cache_runs_ms"] = [round(t, 1) for t in times2]
        result["no_bytecode_cache_median_ms"] = statistics.median(times2)
        result["heavy_modules_after_import"] = sorted(heavy | heavy2)
    return result


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
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pydantic": pydantic.VERSION,
    }


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def source_state() -> dict[str, Any]:
    """Which signalkit was measured: commit, uncommitted changes under src/, content hash."""
    import hashlib

    import signalkit

    root = os.path.dirname(os.path.abspath(signalkit.__file__))
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], capture_output=True, text=True, cwd=root, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = git("status", "--porcelain", "--", ".")
    return {
        "signalkit_path": root,
        "signalkit_version": getattr(signalkit, "__version__", "?"),
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_src_changes": [
            line.split(maxsplit=1)[1] for line in dirty.splitlines() if line.strip()
        ],
        "src_sha256": digest.hexdigest()[:16],
    }


def report(results: dict[str, Any]) -> str:
    rows = results["rows"]
    by = {r["name"]: r for r in rows}
    peers = [r for r in rows if r.get("group") == "peer"]
    faster = min(peers, key=lambda r: r["median_us"]) if peers else None
    floor = by.get("floor: pydantic model_validate(dict)")

    def ratio(v: float, ref: dict | None) -> str:
        return f"{v / ref['median_us']:.3g}x" if ref and ref["median_us"] > 0 else "-"

    def best(r: dict) -> str:
        rm = r.get("round_medians_us")
        return f"{min(rm):.2f}" if rm else "-"

    lines = []
    head = (
        f"| {'call':<44} | {'median µs':>9} | {'p99 µs':>8} | {'best round':>10} | "
        f"{'CPU µs':>7} | {'vs faster peer':>14} | {'vs pydantic floor':>17} |"
    )
    lines.append(head)
    lines.append("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        lines.append(
            f"| {r['name']:<44} | {r['median_us']:9.2f} | {r['p99_us']:8.2f} | "
            f"{best(r):>10} | {r['cpu_mean_us']:7.2f} | "
            f"{ratio(r['median_us'], faster):>14} | {ratio(r['median_us'], floor):>17} |"
        )
    lines.append("")
    lines.append(
        f"timer: perf_counter_ns around each call; empty-region overhead "
        f"{results['timer_overhead']['median_ns']:.0f} ns (median) subtracted from every sample; "
        f"deque.append timed in chunks of 10. 'best round' = lowest of the per-round medians "
        f"(the least disturbed stretch of a shared machine). 'CPU µs' = this thread's CPU time "
        f"per call, mean (thread_time_ns per chunk, timer reads included): close to the wall "
        f"time means the caller was working, not waiting on a lock or the GIL."
    )
    if faster:
        lines.append(f"faster peer: {faster['name']} ({faster['median_us']:.2f} µs median)")

    verdicts = []
    sk_rows = [r for r in rows if r.get("group") == "signalkit"]
    for r in sk_rows:
        parts = []
        ok = True
        if faster:
            limit = faster["median_us"] * TARGET_PEER_FRACTION
            good = r["median_us"] <= limit
            ok &= good
            parts.append(f"<= 1/6 of {faster['name']} ({limit:.2f} µs): {'yes' if good else 'NO'}")
        if floor:
            limit = floor["median_us"] * TARGET_PYDANTIC_RATIO
            good = r["median_us"] <= limit
            ok &= good
            parts.append(f"<= 2x pydantic floor ({limit:.2f} µs): {'yes' if good else 'NO'}")
        # The same ratios on the least disturbed round of each series, for a noisy machine.
        b = min(r["round_medians_us"])
        extra = []
        if faster:
            extra.append(f"{b / min(faster['round_medians_us']):.2f}x faster peer")
        if floor:
            extra.append(f"{b / min(floor['round_medians_us']):.2f}x pydantic floor")
        if extra:
            parts.append("best rounds: " + ", ".join(extra))
        # Paired: each round's ratio to the reference measured in the same round (seconds
        # apart), then the median of those. The VM's fast and slow stretches move both sides
        # of a round alike, so this varies less from run to run than a ratio of medians.
        paired = []
        for ref, label in ((faster, "faster peer"), (floor, "pydantic floor")):
            if ref and len(ref["round_medians_us"]) == len(r["round_medians_us"]):
                per_round = [
                    a / b
                    for a, b in zip(r["round_medians_us"], ref["round_medians_us"], strict=True)
                ]
                paired.append(f"{statistics.median(per_round):.3f}x {label}")
        if paired:
            parts.append("paired rounds (median of per-round ratios): " + ", ".join(paired))
        verdicts.append((r["name"], r["median_us"], ok, "; ".join(parts)))
    deco = by.get("recommendation decorator overhead")
    if deco:
        good = deco["median_us"] < TARGET_DECORATOR_US
        verdicts.append(
            (
                deco["name"],
                deco["median_us"],
                good,
                f"< {TARGET_DECORATOR_US:.0f} µs: {'yes' if good else 'NO'}",
            )
        )
    lines.append("")
    lines.append("verdicts (on medians):")
    for name, med, ok, text in verdicts:
        lines.append(f"  [{'PASS' if ok else 'FAIL'}] {name} = {med:.2f} µs — {text}")
    results["verdicts"] = [
        {"name": n, "median_us": m, "pass": ok, "detail": t} for n, m, ok, t in verdicts
    ]

    sk = results["signalkit_check"]
    honest = (
        sk["total_dropped"] == 0
        and not sk["rejected"]
        and sk["recorded"] == sk["expected_recorded"]
    )
    verdict_bad = (
        "NOT OK: client.stats unavailable, drops could not be checked"
        if sk["recorded"] == -1
        else "NOT OK: some timed calls recorded nothing (cheaper than real ones)"
    )
    lines.append("")
    lines.append(
        f"signalkit stats: recorded {sk['recorded']} (expected {sk['expected_recorded']}), "
        f"rejected {sk['rejected'] or 0}, dropped {sk['dropped'] or 0}"
        f" -> {'OK' if honest else verdict_bad}"
    )
    lines.append(
        f"opentelemetry.trace imported during the signalkit run: "
        f"{sk['opentelemetry.trace_imported_during_run']}"
    )
    fl = results["floor_check"]
    same = fl["floor_model_fields_match_ActionEvent"]
    lines.append(
        f"floor model has ActionEvent's fields: {same}"
        + (
            ""
            if fl["floor_model_fields_match_ActionEvent"]
            else f" (only in ActionEvent: {fl['fields_only_in_ActionEvent']}, "
            f"only in floor: {fl['fields_only_in_floor_model']})"
        )
    )
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
        f"import signalkit, fresh interpreter, bytecode cached (median of {len(imp['runs_ms'])}): "
        f"{imp['median_ms']:.0f} ms {imp['runs_ms']}"
    )
    if "no_bytecode_cache_median_ms" in imp:
        lines.append(
            f"import signalkit with PYTHONDONTWRITEBYTECODE=1 as set here (no .pyc, median of "
            f"{len(imp['no_bytecode_cache_runs_ms'])}): {imp['no_bytecode_cache_median_ms']:.0f} "
            f"ms {imp['no_bytecode_cache_runs_ms']}"
        )
    lines.append(
        f"opentelemetry/httpx in sys.modules after import signalkit: "
        f"{imp['heavy_modules_after_import'] or 'none'}"
    )
    src = results["source"]
    lines.append(
        f"signalkit measured: {src['signalkit_version']} at commit {src['git_commit'] or '?'}"
        + (
            f" + uncommitted changes in {', '.join(src['uncommitted_src_changes'])}"
            if src["uncommitted_src_changes"]
            else ""
        )
        + f" (sources sha256 {src['src_sha256']})"
        + (
            "; note: files under src/ changed on disk during the run (the numbers are for "
            "the code loaded at the start, hashed above)"
            if results.get("source_changed_during_run")
            else ""
        )
    )
    mach, par = results["machine"], results["params"]
    lines.append(
        f"machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['implementation']} "
        f"{mach['python']}, pydantic {mach['pydantic']}; {par['n']} timed calls per series "
        f"(deque: {par['n']} samples of 10 calls) in {par['rounds']} interleaved rounds, "
        f"warm-up {par['warmup']}, queues flushed every {par['chunk']} calls; load average "
        f"before/after: {results['loadavg_before_after'][0]} / "
        f"{results['loadavg_before_after'][1]}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--_sink"]:
        _sink_main()
        return 0
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="timed calls per series (100000)")
    p.add_argument("--warmup", type=int, default=2_000, help="untimed calls first (2000)")
    p.add_argument(
        "--chunk",
        type=int,
        default=2_000,
        help="calls between two flushes, outside the timed region (2000)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="interleaved rounds the timed calls are split into (default: n / chunk, so that "
        "each round runs one chunk of every series)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--skip-peers", action="store_true", help="do not run PostHog and Segment")
    args = p.parse_args(argv)
    if args.rounds == 0:
        args.rounds = -(-args.n // args.chunk) if args.chunk > 0 else 1
    if args.n < 1 or args.warmup < 0 or args.chunk < 1 or not 1 <= args.rounds <= args.n:
        p.error("--n and --chunk must be >= 1, --warmup >= 0, 1 <= --rounds <= --n")

    # No default client is made here, but keep any stray .signalkit/ out of the working tree.
    os.environ.setdefault("SIGNALKIT_DIR", tempfile.mkdtemp(prefix="signalkit-bench-"))
    t_start = time.monotonic()
    print("import signalkit in fresh interpreters...", file=sys.stderr, flush=True)
    imp = bench_import()

    src_before = source_state()
    load_before = _loadavg()
    print("setting up...", file=sys.stderr, flush=True)
    sk = SignalkitBench(args.n, args.warmup)
    series = sk.series(args.n, args.warmup)
    floors, floor_check = floor_series()
    series += floors
    peers: PeersBench | None = None
    peer_check: dict[str, Any] = {"skipped": "--skip-peers"}
    if not args.skip_peers:
        try:
            peers = PeersBench()
        except ImportError as exc:
            peer_check = {
                "skipped": f"{exc} (run with --with posthog --with segment-analytics-python)"
            }
            print(f"peers skipped: {exc}", file=sys.stderr)
    try:
        if peers is not None:
            series += peers.series()
        spin(1.0)
        overhead = timer_overhead(max(args.n, 10_000))
        print(
            f"timer overhead: {overhead['median_ns']:.0f} ns median; "
            f"{len(series)} series x {args.n} calls in {args.rounds} rounds...",
            file=sys.stderr,
            flush=True,
        )
        run_interleaved(
            series,
            n=args.n,
            warmup=args.warmup,
            chunk=args.chunk,
            rounds=args.rounds,
            overhead_ns=overhead["median_ns"],
        )
        rows = [summarise(s, overhead["median_ns"]) for s in series]
        deco = {r["name"]: r for r in rows}
        bare, wrapped = deco["bare function call"], deco["@client.recommendation(...) call"]
        rows.insert(
            rows.index(wrapped) + 1,
            {
                "name": "recommendation decorator overhead",
                "group": "decorator",
                "calls": wrapped["calls"],
                "median_us": wrapped["median_us"] - bare["median_us"],
                "p99_us": wrapped["p99_us"] - bare["p99_us"],
                "mean_us": wrapped["mean_us"] - bare["mean_us"],
                "cpu_mean_us": wrapped["cpu_mean_us"] - bare["cpu_mean_us"],
                "note": "decorated minus bare call (medians; p99 is the difference of p99s)",
            },
        )
        sk_check = sk.check()
        if peers is not None:
            peer_check = peers.check()
    finally:
        if peers is not None:
            peers.close()

    results: dict[str, Any] = {
        "command": "uv run --with posthog --with segment-analytics-python python "
        "benchmarks/hot_path.py " + " ".join(argv),
        "params": {"n": args.n, "warmup": args.warmup, "chunk": args.chunk, "rounds": args.rounds},
        "machine": machine(),
        "source": src_before,
        "loadavg_before_after": [load_before, _loadavg()],
        "source_changed_during_run": source_state()["src_sha256"] != src_before["src_sha256"],
        "timer_overhead": overhead,
        "rows": rows,
        "signalkit_check": sk_check,
        "floor_check": floor_check,
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
