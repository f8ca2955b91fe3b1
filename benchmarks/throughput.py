"""Delivered throughput and behaviour through a sink outage: signalkit against three peers.

Run it from the repository root with one command (the peers are pulled in for this run only,
they are never dependencies of signalkit):

    uv run --with posthog --with segment-analytics-python \
        --with opentelemetry-exporter-otlp-proto-http python benchmarks/throughput.py

That is the full run: 200,000 events per throughput run, 3 interleaved rounds, then a 60 s
outage per SDK; about 10 minutes on a 2-core machine. A quick run (about 2 minutes):

    uv run --with posthog --with segment-analytics-python \
        --with opentelemetry-exporter-otlp-proto-http python benchmarks/throughput.py \
        --n 20000 --rounds 1 --outage-seconds 10 --recovery-seconds 10

Options: ``--n`` events per throughput run (200000), ``--rounds`` interleaved rounds (3),
``--outage-seconds`` (60), ``--rate`` events/s during the outage test (2000),
``--warmup-seconds`` before the outage (5), ``--recovery-seconds`` of recording after it (20),
``--only throughput|outage``, ``--sdks`` (comma list of ``signalkit,signalkit-big,posthog,
segment,otel``), ``--json PATH`` to also write every number, ``--profile DIR`` to also profile
the signalkit runs (one cProfile per thread; py-spy when it can attach). Exit status 1 if a
child process failed or signalkit lost an event (accepted, not delivered, not counted dropped).

The SDKs, each in its **default configuration** (nothing tuned), each sending to the same sink:

* **signalkit** ``Client(exporters=[HttpExporter(url)])``: queue 10,000 events / 16 MiB,
  batches of 512, one dispatcher thread and one lane thread; ``action(exposure, "accepted",
  attributes={"i": i, "phase": ...})``. 1,000 exposures are recorded and flushed before the
  clock starts (they are not counted).
* **signalkit-big**: the same with ``max_queue=n + 10_000, max_queue_bytes=2 GiB`` (the only
  change): the configuration for zero drops, shown as its own row.
* **PostHog** ``posthog.Posthog(key, host=url)``: queue 10,000, one consumer, batches of 100,
  3 retries, ``capture()`` returns None when it drops. Posts to ``<host>/batch/``.
* **Segment** ``segment.analytics.Client(write_key, host=url)``: queue 10,000, one consumer,
  batches of 100, 10 retries, ``track()`` returns ``(False, msg)`` when it drops. Posts to
  ``<host>/v1/batch``.
* **OpenTelemetry** ``LoggerProvider`` + ``BatchLogRecordProcessor`` (queue 2,048, batches of
  512, 1 s schedule) + ``OTLPLogExporter(endpoint=<url>/v1/logs)`` (protobuf, no compression):
  ``logger.emit(body=..., event_name="accepted", attributes={...})``. It drops the *oldest*
  record when its queue is full, logging a warning per drop; ``emit`` returns nothing.

PostHog and Segment get an ``on_error`` callback, only to count the events of batches they give
up on (it changes nothing else). A logging handler on the root logger counts every WARNING and
above by logger (it prints nothing: without it Python would print them to stderr), so the SDKs'
own drop messages are counted the same way for all.

How it is measured:

* The sink (``benchmarks/sink_server.py``) is a separate process: it does not share a GIL with
  the SDK under test. It answers at once and parses later; it counts the events it received per
  run (distinct by their integer ``i``) and when the last one arrived.
* **Each SDK runs in its own child process**, so its peak RSS (``VmHWM`` from
  ``/proc/self/status``) is its own; a child imports only its SDK.
* **Throughput:** one thread records ``--n`` events as fast as it can, then calls the SDK's
  ``shutdown()``. Delivered throughput = distinct events the sink received / (time the last of
  them arrived - time of the first recording call), with ``time.monotonic()`` in both processes
  (CLOCK_MONOTONIC is one clock for the whole machine). Dropped = what the SDK reported
  (return values, stats, ``on_error``, its warnings); *unaccounted* = n - received - reported.
  Rounds are interleaved: every round runs every SDK once, in an order rotated each round, so
  a slow stretch of the shared VM falls on all of them alike; the table shows the median round.
* **Outage** (DESIGN §5, RELIABILITY R3): each SDK records at ``--rate`` events/s (paced every
  5 ms) for ``--warmup-seconds`` against the sink's outage port, then the sink goes down for
  ``--outage-seconds`` (new connections accepted and closed at once; a request on an older
  keep-alive connection gets the connection closed, no answer), then comes back on the same
  port while recording continues for ``--recovery-seconds``, then ``shutdown()`` (bounded to
  30 s). Reported: RSS growth during the outage (max ``VmRSS`` sampled every 0.25 s, minus
  ``VmRSS`` when it went down), drops (during the outage and in total), attempts the sink saw
  while down (connections + requests), warnings logged during the outage, and *backlog
  delivered*: when the last event recorded before recovery (warm-up or outage phase) that was
  ever delivered reached the sink, counted from the moment the sink came back.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SDKS = ["signalkit", "signalkit-big", "posthog", "segment", "otel"]
OUTAGE_SDKS = ["signalkit", "posthog", "segment", "otel"]
LABELS = {
    "signalkit": "signalkit HttpExporter (defaults)",
    "signalkit-big": "signalkit HttpExporter (max_queue=n+10k, 2 GiB)",
    "posthog": "PostHog Posthog(host=) (defaults)",
    "segment": "Segment analytics Client(host=) (defaults)",
    "otel": "OTel BatchLogRecordProcessor + OTLPLogExporter",
}
ROTATE = 1000
TARGET_FACTOR = 3.0

# ---------------------------------------------------------------------------------------------
# Child side: one SDK, one scenario, one process. Prints one JSON line (the last on stdout).
# ---------------------------------------------------------------------------------------------


def _proc_status() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                out[name] = int(value.split()[0])  # kB
    return out


def _rss_kib() -> int:
    return _proc_status()["VmRSS"]


class CountingHandler(logging.Handler):
    """Counts WARNING+ records by logger and by the run's current phase; keeps a few messages.

    Constant memory: PostHog and Segment log one warning per dropped event, and keeping a
    record of each would add megabytes to the very RSS being measured.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lock_ = threading.Lock()
        self.phase = ""
        self.counts: dict[str, int] = {}
        self.by_phase: dict[str, dict[str, int]] = {}
        self.samples: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name
        with self.lock_:
            self.counts[name] = self.counts.get(name, 0) + 1
            ph = self.by_phase.setdefault(self.phase, {})
            ph[name] = ph.get(name, 0) + 1
            kept = self.samples.setdefault(name, [])
            if len(kept) < 3:
                try:
                    kept.append(record.getMessage()[:200])
                except Exception:
                    kept.append(str(record.msg)[:200])

    def snapshot(self) -> dict[str, int]:
        with self.lock_:
            return dict(self.counts)

    def in_phase(self, phase: str) -> dict[str, int]:
        with self.lock_:
            return dict(self.by_phase.get(phase, {}))


class Adapter:
    """One SDK behind a common face: ``record(i, phase) -> accepted``, ``shutdown()``."""

    name = ""
    version = ""

    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.call_drops: dict[str, int] = {}
        self.error_drops: list[tuple[float, int]] = []  # (when, events) from on_error
        self.config: dict[str, Any] = {}

    def prepare(self) -> None:
        """Untimed set-up traffic (signalkit's exposures)."""

    def recorder(self) -> Callable[[int, str], bool]:
        raise NotImplementedError

    def shutdown(self, timeout: float) -> bool:
        raise NotImplementedError

    def reported_drops(self) -> dict[str, int]:
        """Events the SDK itself said it dropped, by how it said so."""
        out = {f"call:{k}": v for k, v in self.call_drops.items() if v}
        n = sum(c for _, c in self.error_drops)
        if n:
            out["on_error"] = n
        return out

    def extra(self) -> dict[str, Any]:
        return {}

    def _on_error(self, exc: Exception, batch: Any) -> None:
        try:
            n = len(batch)
        except Exception:
            n = 0
        self.error_drops.append((time.monotonic(), n))


def _bounded(fn: Callable[[], Any], timeout: float) -> bool:
    """Run ``fn`` on a daemon thread; True if it returned within ``timeout``."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive()


class SignalkitAdapter(Adapter):
    def __init__(self, url: str, n: int, big: bool) -> None:
        super().__init__(url, n)
        import signalkit as sk
        from signalkit.exporters.http import HttpExporter

        self.name = "signalkit-big" if big else "signalkit"
        self.version = sk.__version__
        kwargs: dict[str, Any] = {}
        if big:
            kwargs = {"max_queue": n + 10_000, "max_queue_bytes": 2 * 2**30}
        self.exporter = HttpExporter(url + "/v1/signals")
        self.client = sk.Client("bench", exporters=[self.exporter], secret="x" * 32, **kwargs)
        p = self.client._pipeline
        self.config = {
            "max_queue": p.max_queue,
            "max_queue_bytes": p.max_queue_bytes,
            "batch_size": p.batch_size,
            "flush_interval_s": p.interval_s,
            "on_queue_full": p.on_full,
            "http": {
                "max_batch_events": self.exporter.max_batch_events,
                "gzip_threshold_bytes": self.exporter.gzip_threshold_bytes,
                "format": self.exporter.format,
                "timeout_s": self.exporter.timeout_s,
            },
        }
        self.exposures: list[Any] = []

    def prepare(self) -> None:
        for j in range(ROTATE):
            with self.client.exposure(
                "reply-draft", model="gpt-x", model_version="2026-11-01", user_id=f"user-{j}"
            ) as exp:
                pass
            self.exposures.append(exp)
        if not self.client.flush(timeout=30):
            raise RuntimeError("signalkit: set-up flush timed out")

    def recorder(self) -> Callable[[int, str], bool]:
        action, exps, m = self.client.action, self.exposures, ROTATE

        def record(i: int, phase: str) -> bool:
            return action(exps[i % m], "accepted", attributes={"i": i, "phase": phase}) is not None

        return record

    def shutdown(self, timeout: float) -> bool:
        return bool(self.client.shutdown(timeout=timeout))

    def stats(self) -> dict[str, Any]:
        st = self.client.stats
        return {
            "recorded": st.recorded,
            "rejected": dict(st.rejected),
            "dropped": dict(st.dropped),
            "delivered": dict(st.delivered),
            "retried": st.retried,
            "failed": st.failed,
            "pending": st.pending,
        }

    def reported_drops(self) -> dict[str, int]:
        out = {f"stats:{k}": v for k, v in self.client.stats.dropped.items() if v}
        out.update(super().reported_drops())
        return out

    def extra(self) -> dict[str, Any]:
        return {"stats": self.stats()}


class PosthogAdapter(Adapter):
    name = "posthog"

    def __init__(self, url: str, n: int) -> None:
        super().__init__(url, n)
        import posthog

        self.version = getattr(posthog, "VERSION", "?")
        self.client = posthog.Posthog("phc_benchmark", host=url, on_error=self._on_error)
        self.config = {"max_queue_size": 10_000, "flush_at": 100, "max_retries": 3, "thread": 1}
        self.exposure_ids = [f"0190c0de-0000-7000-8000-{j:012d}" for j in range(ROTATE)]
        self.users = [f"user-{j}" for j in range(ROTATE)]

    def recorder(self) -> Callable[[int, str], bool]:
        capture, eids, users, m = self.client.capture, self.exposure_ids, self.users, ROTATE
        drops = self.call_drops

        def record(i: int, phase: str) -> bool:
            j = i % m
            r = capture(
                "accepted",
                distinct_id=users[j],
                properties={"exposure_id": eids[j], "action": "accepted", "i": i, "phase": phase},
            )
            if r is None:
                drops[phase] = drops.get(phase, 0) + 1
                return False
            return True

        return record

    def shutdown(self, timeout: float) -> bool:
        return _bounded(self.client.shutdown, timeout)


class SegmentAdapter(Adapter):
    name = "segment"

    def __init__(self, url: str, n: int) -> None:
        super().__init__(url, n)
        import segment.analytics as segment_analytics

        self.version = getattr(segment_analytics, "VERSION", "?")
        self.client = segment_analytics.Client(
            "benchmark-write-key", host=url, on_error=self._on_error
        )
        self.config = {
            "max_queue_size": 10_000,
            "upload_size": 100,
            "upload_interval": 0.5,
            "max_retries": 10,
            "thread": 1,
        }
        self.exposure_ids = [f"0190c0de-0000-7000-8000-{j:012d}" for j in range(ROTATE)]
        self.users = [f"user-{j}" for j in range(ROTATE)]

    def recorder(self) -> Callable[[int, str], bool]:
        track, eids, users, m = self.client.track, self.exposure_ids, self.users, ROTATE
        drops = self.call_drops

        def record(i: int, phase: str) -> bool:
            j = i % m
            ok, _ = track(
                user_id=users[j],
                event="accepted",
                properties={"exposure_id": eids[j], "action": "accepted", "i": i, "phase": phase},
            )
            if not ok:
                drops[phase] = drops.get(phase, 0) + 1
            return bool(ok)

        return record

    def shutdown(self, timeout: float) -> bool:
        return _bounded(self.client.shutdown, timeout)


class OtelAdapter(Adapter):
    name = "otel"

    def __init__(self, url: str, n: int) -> None:
        super().__init__(url, n)
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk import version as sdk_version
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        self.version = sdk_version.__version__
        self.provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
        self.processor = BatchLogRecordProcessor(OTLPLogExporter(endpoint=url + "/v1/logs"))
        self.provider.add_log_record_processor(self.processor)
        self.logger = self.provider.get_logger("bench")
        bp = self.processor._batch_processor
        self.config = {
            "max_queue_size": bp._max_queue_size,
            "max_export_batch_size": bp._max_export_batch_size,
            "schedule_delay_millis": bp._schedule_delay_millis,
            "compression": "none",
        }
        self.exposure_ids = [f"0190c0de-0000-7000-8000-{j:012d}" for j in range(ROTATE)]
        self.users = [f"user-{j}" for j in range(ROTATE)]

    def recorder(self) -> Callable[[int, str], bool]:
        emit, eids, users, m = self.logger.emit, self.exposure_ids, self.users, ROTATE

        def record(i: int, phase: str) -> bool:
            j = i % m
            emit(
                body="accepted",
                event_name="accepted",
                attributes={
                    "user_id": users[j],
                    "exposure_id": eids[j],
                    "action": "accepted",
                    "i": i,
                    "phase": phase,
                },
            )
            return True  # emit() says nothing; drops are its "Queue full" warnings

        return record

    def shutdown(self, timeout: float) -> bool:
        return _bounded(self.provider.shutdown, timeout)

    def reported_drops(self) -> dict[str, int]:
        out = super().reported_drops()
        n = self.counter.counts.get("opentelemetry.sdk._shared_internal", 0)
        if n:
            out["warning:Queue full"] = n
        return out


def make_adapter(sdk: str, url: str, n: int) -> Adapter:
    if sdk == "signalkit":
        return SignalkitAdapter(url, n, big=False)
    if sdk == "signalkit-big":
        return SignalkitAdapter(url, n, big=True)
    if sdk == "posthog":
        return PosthogAdapter(url, n)
    if sdk == "segment":
        return SegmentAdapter(url, n)
    if sdk == "otel":
        return OtelAdapter(url, n)
    raise ValueError(sdk)


def _control(base: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + path, timeout=10) as r:
        result: dict[str, Any] = json.loads(r.read())
        return result


class _ThreadProfiler:
    """One cProfile per thread started after install() (signalkit's threads start lazily)."""

    def __init__(self) -> None:
        import cProfile

        self.cProfile = cProfile
        self.profiles: dict[str, Any] = {}
        self.main = cProfile.Profile()

    def install(self) -> None:
        def start(frame: Any, event: str, arg: Any) -> None:
            threading.setprofile(None)  # this hook only starts the thread's own profiler
            sys.setprofile(None)
            prof = self.cProfile.Profile()
            self.profiles[threading.current_thread().name] = prof
            prof.enable()

        threading.setprofile(start)
        self.main.enable()

    def dump(self, directory: str, tag: str) -> list[str]:
        import io
        import pstats

        self.main.disable()
        threading.setprofile(None)
        self.profiles["MainThread (recording)"] = self.main
        paths = []
        os.makedirs(directory, exist_ok=True)
        for name, prof in self.profiles.items():
            with contextlib.suppress(Exception):
                prof.disable()
            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf)
            st.sort_stats("tottime").print_stats(30)
            st.sort_stats("cumulative").print_stats(40)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            path = os.path.join(directory, f"{tag}-{safe}.txt")
            with open(path, "w") as f:
                f.write(buf.getvalue())
            paths.append(path)
        return paths


def child_throughput(cfg: dict[str, Any], counter: CountingHandler) -> dict[str, Any]:
    n = cfg["n"]
    ad = make_adapter(cfg["sdk"], cfg["url"], n)
    ad.counter = counter  # type: ignore[attr-defined]
    ad.prepare()
    record = ad.recorder()
    profiler = _ThreadProfiler() if cfg.get("profile_dir") else None
    spy = None
    if cfg.get("pyspy"):  # sample only the timed region: attach to ourselves now
        spy = subprocess.Popen(
            [cfg["pyspy"], "record", "--pid", str(os.getpid()), "--threads", "-r", "250"]
            + ["-f", "raw", "-o", cfg["pyspy_out"]]
            + (["--gil"] if cfg.get("pyspy_gil") else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.5)  # let it attach (idle: not sampled)
    gc.collect()
    rss0 = _rss_kib()
    cpu0 = time.process_time()
    if profiler:
        profiler.install()
    accepted = 0
    t_first = time.monotonic()
    for i in range(n):
        if record(i, "t"):
            accepted += 1
    t_recorded = time.monotonic()
    stopped = ad.shutdown(cfg["shutdown_timeout"])
    t_done = time.monotonic()
    cpu = time.process_time() - cpu0
    if spy is not None:
        import signal

        spy.send_signal(signal.SIGINT)
        try:
            spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.communicate()
    st = _proc_status()
    out = {
        "sdk": ad.name,
        "version": ad.version,
        "config": ad.config,
        "n": n,
        "accepted_calls": accepted,
        "t_first": t_first,
        "t_recorded": t_recorded,
        "t_done": t_done,
        "shutdown_returned": stopped,
        "cpu_s": cpu,
        "rss_before_kib": rss0,
        "rss_end_kib": st["VmRSS"],
        "vmhwm_kib": st["VmHWM"],
        "reported_drops": ad.reported_drops(),
        "warnings": counter.snapshot(),
        "warning_samples": counter.samples,
        **ad.extra(),
    }
    if profiler:
        out["profiles"] = profiler.dump(cfg["profile_dir"], ad.name)
    return out


def _paced(
    record: Callable[[int, str], bool], start_i: int, rate: float, seconds: float, phase: str
) -> tuple[int, int]:
    """Record ``rate * seconds`` events at ``rate``/s; returns (next i, accepted)."""
    total = round(rate * seconds)
    t0 = time.monotonic()
    k = accepted = 0
    while k < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        while k < due:
            if record(start_i + k, phase):
                accepted += 1
            k += 1
        time.sleep(0.005)
    rest = t0 + seconds - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    return start_i + total, accepted


class _RssSampler:
    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), _rss_kib()))
            self._stop.wait(self.interval)

    def start(self) -> _RssSampler:
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)
        self.samples.append((time.monotonic(), _rss_kib()))


def child_outage(cfg: dict[str, Any], counter: CountingHandler) -> dict[str, Any]:
    rate = cfg["rate"]
    ad = make_adapter(cfg["sdk"], cfg["url"], int(rate * 200))
    ad.counter = counter  # type: ignore[attr-defined]
    ad.prepare()
    record = ad.recorder()
    control = cfg["control"]
    gc.collect()
    rss_start = _rss_kib()
    counter.phase = "w"
    sk_stats: dict[str, Any] = {}
    snap = lambda: ad.stats() if isinstance(ad, SignalkitAdapter) else {}  # noqa: E731
    i, acc_w = _paced(record, 0, rate, cfg["warmup_seconds"], "w")
    n_w = i
    sk_stats["at_down"] = snap()
    drops_at_down = ad.reported_drops()
    rss_down = _rss_kib()
    t_down = _control(control, f"/down?key={cfg['key']}")["down_at"]
    counter.phase = "o"
    sampler = _RssSampler().start()
    i, acc_o = _paced(record, i, rate, cfg["outage_seconds"], "o")
    n_o = i - n_w
    t_up = _control(control, "/up")["up_at"]
    counter.phase = "r"
    sampler.stop()
    sk_stats["at_up"] = snap()
    drops_at_up = ad.reported_drops()
    rss_up = _rss_kib()
    i, acc_r = _paced(record, i, rate, cfg["recovery_seconds"], "r")
    n_r = i - n_w - n_o
    t_rec_end = time.monotonic()
    stopped = ad.shutdown(cfg["shutdown_timeout"])
    t_done = time.monotonic()
    sk_stats["end"] = snap()
    outage_rss = [kib for t, kib in sampler.samples if t_down <= t <= t_up + 0.3]
    on_error_by_phase: dict[str, int] = {}
    for t, c in ad.error_drops:
        ph = "w" if t < t_down else "o" if t < t_up else "r"
        on_error_by_phase[ph] = on_error_by_phase.get(ph, 0) + c
    return {
        "sdk": ad.name,
        "version": ad.version,
        "config": ad.config,
        "recorded": {"w": n_w, "o": n_o, "r": n_r},
        "accepted_calls": {"w": acc_w, "o": acc_o, "r": acc_r},
        "t_down": t_down,
        "t_up": t_up,
        "t_recovery_end": t_rec_end,
        "t_done": t_done,
        "shutdown_returned": stopped,
        "rss_start_kib": rss_start,
        "rss_at_down_kib": rss_down,
        "rss_max_during_outage_kib": max(outage_rss) if outage_rss else rss_up,
        "rss_at_up_kib": rss_up,
        "rss_samples": [(round(t - t_down, 2), kib) for t, kib in sampler.samples],
        "vmhwm_kib": _proc_status()["VmHWM"],
        "reported_drops_at_down": drops_at_down,
        "reported_drops_at_up": drops_at_up,
        "reported_drops_end": ad.reported_drops(),
        "on_error_by_phase": on_error_by_phase,
        "warnings_during_outage": counter.in_phase("o"),
        "warnings_total": counter.snapshot(),
        "warning_samples": counter.samples,
        "signalkit_stats": sk_stats,
    }


def child_main(cfg: dict[str, Any]) -> int:
    counter = CountingHandler()
    logging.getLogger().addHandler(counter)
    os.environ.setdefault("SIGNALKIT_DIR", tempfile.mkdtemp(prefix="signalkit-bench-"))
    if cfg["mode"] == "throughput":
        out = child_throughput(cfg, counter)
    else:
        out = child_outage(cfg, counter)
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------------------------
# Parent side: the sink, the runs, the report.
# ---------------------------------------------------------------------------------------------


class Sink:
    def __init__(self, max_seconds: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                os.path.join(HERE, "sink_server.py"),
                "--max-seconds",
                str(int(max_seconds)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ports = json.loads(self.proc.stdout.readline())
        self.data = f"http://127.0.0.1:{ports['data']}"
        self.outage = f"http://127.0.0.1:{ports['outage']}"
        self.control = f"http://127.0.0.1:{ports['control']}"

    def stats(self, key: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.control}/stats?key={key}", timeout=120) as r:
            result: dict[str, Any] = json.loads(r.read())
        _control(self.control, f"/forget?key={key}")
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def run_child(cfg: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", json.dumps(cfg)]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return {"error": f"timed out after {timeout:.0f} s", "stderr": str(exc.stderr)[-2000:]}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit status {proc.returncode}", "stderr": proc.stderr[-3000:]}
    out: dict[str, Any] = json.loads(lines[-1])
    out["child_wall_s"] = time.monotonic() - t0
    if proc.stderr.strip():
        out["stderr_tail"] = proc.stderr[-1500:]
    return out


def run_throughput(
    sink: Sink, sdks: list[str], n: int, rounds: int, profile_dir: str | None
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sdks}
    for r in range(rounds):
        k = r % len(sdks)
        order = sdks[k:] + sdks[:k]
        for sdk in order:
            key = f"tp-{sdk}-{r}"
            cfg = {
                "mode": "throughput",
                "sdk": sdk,
                "url": f"{sink.data}/{key}",
                "n": n,
                "shutdown_timeout": 300,
            }
            print(f"  round {r + 1}/{rounds}: {sdk} ...", file=sys.stderr, flush=True)
            res = run_child(cfg, timeout=900)
            res["sink"] = sink.stats(key)
            runs[sdk].append(_throughput_row(sdk, n, res))
            row = runs[sdk][-1]
            print(
                f"    {row.get('delivered_per_s', 0):,.0f} ev/s delivered, received "
                f"{row.get('received', 0):,}, dropped {row.get('dropped', 0):,}"
                + (f"  ERROR {res['error']}" if "error" in res else ""),
                file=sys.stderr,
                flush=True,
            )
    if profile_dir:
        for sdk in [s for s in sdks if s.startswith("signalkit")]:
            runs.setdefault(f"{sdk} (profiled)", []).extend(
                profile_signalkit(sink, sdk, n, profile_dir)
            )
    return runs


def profile_signalkit(sink: Sink, sdk: str, n: int, directory: str) -> list[dict[str, Any]]:
    """One more throughput run of ``sdk`` under a profiler, summarised per thread.

    With py-spy on PATH (``uv run --with py-spy ...``): two runs, each sampled at 250 Hz from
    the first recording call to the return of ``shutdown()`` (the child attaches py-spy to
    itself), one of the thread holding the GIL (``--gil``: where the interpreter's time goes)
    and one of every thread not idle (also shows gzip and socket waits, which release the GIL).
    Without py-spy, one cProfile per thread (much slower: read its shares, not its times).
    """
    import shutil

    os.makedirs(directory, exist_ok=True)
    pyspy = shutil.which("py-spy")
    rows = []
    modes = ["gil", "active"] if pyspy else ["cprofile"]
    for mode in modes:
        key = f"prof-{sdk}-{mode}"
        cfg: dict[str, Any] = {
            "mode": "throughput",
            "sdk": sdk,
            "url": f"{sink.data}/{key}",
            "n": n,
            "shutdown_timeout": 300,
        }
        raw = os.path.join(directory, f"{sdk}-{mode}.raw")
        if pyspy:
            cfg.update(pyspy=pyspy, pyspy_out=raw, pyspy_gil=mode == "gil")
        else:
            cfg["profile_dir"] = directory
        print(f"  profiling {sdk} ({mode}) ...", file=sys.stderr, flush=True)
        res = run_child(cfg, timeout=900)
        res["sink"] = sink.stats(key)
        row = _throughput_row(sdk, n, res)
        row["profile_mode"] = mode
        if pyspy and os.path.exists(raw):
            row["profile_summary"] = summarise_pyspy(raw)
            row["profile_raw"] = raw
        rows.append(row)
    return rows


def _role(stack: str) -> str:
    if "Lane._run" in stack:
        return "lane thread (HttpExporter)"
    if "Pipeline._run" in stack:
        return "dispatcher thread"
    if "child_throughput" in stack and "recorder.<locals>.record" in stack:
        return "caller: recording calls"
    if "child_throughput" in stack and "shutdown" in stack:
        return "caller: waiting in shutdown()"
    if "child_throughput" in stack or "<module>" in stack:
        return "caller: other (imports, set-up)"
    return "other threads"


_INTERESTING = ("signalkit/", "gzip.py", "zlib", "httpx/", "httpcore/", "h11/", "ssl.py")


def summarise_pyspy(path: str, top: int = 14) -> dict[str, Any]:
    """Samples per thread role, and the heaviest frames of each (inclusive, % of the role)."""
    roles: dict[str, int] = {}
    frames: dict[str, dict[str, int]] = {}
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            try:
                c = int(count)
            except ValueError:
                continue
            role = _role(stack)
            roles[role] = roles.get(role, 0) + c
            seen = set()
            bucket = frames.setdefault(role, {})
            for fr in stack.split(";")[1:]:
                name, _, where = fr.partition(" (")
                where = where.rstrip(")").rsplit(":", 1)[0]
                if not any(k in where for k in _INTERESTING):
                    continue
                label = f"{name} ({where.split('site-packages/')[-1].split('src/')[-1]})"
                if label not in seen:
                    seen.add(label)
                    bucket[label] = bucket.get(label, 0) + c
    total = sum(roles.values()) or 1
    out: dict[str, Any] = {"samples": total, "roles": {}}
    for role, c in sorted(roles.items(), key=lambda kv: -kv[1]):
        heavy = sorted(frames.get(role, {}).items(), key=lambda kv: -kv[1])[:top]
        out["roles"][role] = {
            "share": c / total,
            "seconds_at_250hz": c / 250,
            "frames": [(label, k / c) for label, k in heavy],
        }
    return out


def _profile_text(runs: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for name, rows in runs.items():
        for r in rows:
            summ = r.get("profile_summary")
            if not summ:
                continue
            lines.append(
                f"profile of {name}, py-spy {r['profile_mode']} ({summ['samples']} samples at "
                f"250 Hz; this run delivered {r.get('delivered_per_s', 0):,.0f} ev/s under the "
                f"profiler):"
            )
            for role, info in summ["roles"].items():
                lines.append(
                    f"  {role}: {100 * info['share']:.1f} % of samples "
                    f"({info['seconds_at_250hz']:.1f} s)"
                )
                for label, frac in info["frames"][:10]:
                    lines.append(f"      {100 * frac:5.1f} %  {label}")
    return "\n".join(lines)


def _throughput_row(sdk: str, n: int, res: dict[str, Any]) -> dict[str, Any]:
    if "error" in res:
        return {
            "sdk": sdk,
            "error": res["error"],
            "stderr": res.get("stderr", ""),
            "sink": res.get("sink"),
        }
    s = res["sink"]
    t_phase = s["phases"].get("t", {})
    received = t_phase.get("distinct", 0)
    last = t_phase.get("last_new_arrival")
    elapsed = (last - res["t_first"]) if last else None
    dropped = sum(res["reported_drops"].values())
    unaccounted = n - received - dropped
    # Delivery while the caller was still recording, and after: the two differ a lot when the
    # SDK's delivery threads share the GIL with a busy caller.
    t_first, t_rec = res["t_first"], res["t_recorded"]
    during = sum(c for t, c in s.get("arrivals", ()) if t_first <= t <= t_rec)
    after_s = (last - t_rec) if last and last > t_rec else None
    return {
        **res,
        "received": received,
        "duplicates": s["duplicates"],
        "requests": s["requests"],
        "parse_errors": s["parse_errors"],
        "elapsed_s": elapsed,
        "record_s": res["t_recorded"] - res["t_first"],
        "to_shutdown_s": res["t_done"] - res["t_first"],
        "delivered_per_s": received / elapsed if elapsed else 0.0,
        "recorded_per_s": n / (res["t_recorded"] - res["t_first"]),
        "dropped": dropped,
        "unaccounted": unaccounted,
        "peak_rss_mib": res["vmhwm_kib"] / 1024,
        "rss_growth_mib": (res["vmhwm_kib"] - res["rss_before_kib"]) / 1024,
        "delivered_while_recording": during,
        "delivered_per_s_while_recording": during / (t_rec - t_first),
        "delivered_per_s_after_recording": (received - during) / after_s if after_s else None,
        "drain_after_recording_s": after_s,
    }


def run_outage(sink: Sink, sdks: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for sdk in sdks:
        key = f"out-{sdk}"
        cfg = {
            "mode": "outage",
            "sdk": sdk,
            "key": key,
            "url": f"{sink.outage}/{key}",
            "control": sink.control,
            "rate": args.rate,
            "warmup_seconds": args.warmup_seconds,
            "outage_seconds": args.outage_seconds,
            "recovery_seconds": args.recovery_seconds,
            "shutdown_timeout": 30,
        }
        budget = args.warmup_seconds + args.outage_seconds + args.recovery_seconds + 120
        print(
            f"  outage: {sdk} ({args.warmup_seconds:g} s up, {args.outage_seconds:g} s down, "
            f"{args.recovery_seconds:g} s up, at {args.rate:g} ev/s) ...",
            file=sys.stderr,
            flush=True,
        )
        res = run_child(cfg, timeout=budget)
        _control(sink.control, "/up")  # in case the child died while it was down
        res["sink"] = sink.stats(key)
        out[sdk] = _outage_row(sdk, res)
        row = out[sdk]
        if "error" in row:
            print(f"    ERROR {row['error']}", file=sys.stderr, flush=True)
        else:
            print(
                f"    RSS +{row['rss_growth_mib']:.1f} MiB, dropped in outage "
                f"{row['dropped_during_outage']:,}, attempts {row['attempts']}, backlog "
                f"{_fmt_s(row['backlog_s'])} after recovery",
                file=sys.stderr,
                flush=True,
            )
    return out


def _outage_row(sdk: str, res: dict[str, Any]) -> dict[str, Any]:
    if "error" in res:
        return {"sdk": sdk, "error": res["error"], "stderr": res.get("stderr", "")}
    s = res["sink"]
    ph = s["phases"]
    t_up = res["t_up"]
    pre = [ph[p]["last_new_arrival"] for p in ("w", "o") if p in ph]
    last_pre = max(pre) if pre else None
    backlog = max(0.0, last_pre - t_up) if last_pre is not None else None
    rec = res["recorded"]
    delivered = {p: ph.get(p, {}).get("distinct", 0) for p in ("w", "o", "r")}
    after_up = [t for t, c in s.get("arrivals", ()) if t >= t_up and c]
    first_after_up = (min(after_up) - t_up) if after_up else None

    def total(d: dict[str, int]) -> int:
        return sum(d.values())

    drops_down = total(res["reported_drops_at_down"])
    drops_up = total(res["reported_drops_at_up"])
    drops_end = total(res["reported_drops_end"])
    n_all = total(rec)
    return {
        **res,
        "rss_growth_mib": (res["rss_max_during_outage_kib"] - res["rss_at_down_kib"]) / 1024,
        "rss_at_down_mib": res["rss_at_down_kib"] / 1024,
        "dropped_during_outage": drops_up - drops_down,
        "dropped_total": drops_end,
        "drops_by_reason_end": res["reported_drops_end"],
        "attempts": s["refused_requests"] + s["refused_connections"],
        "attempts_detail": {
            "requests_on_open_connections": s["refused_requests"],
            "new_connections": s["refused_connections"],
        },
        "delivered_by_phase": delivered,
        "delivered_total": total(delivered),
        "unaccounted": n_all - total(delivered) - drops_end,
        "duplicates": s["duplicates"],
        "backlog_s": backlog,
        "outage_events_delivered_frac": delivered["o"] / rec["o"] if rec["o"] else None,
        "first_delivery_after_up_s": first_after_up,
        "warnings_in_outage": total(res["warnings_during_outage"]),
        "per_second": s.get("per_second", {}),
    }


def _fmt_s(v: float | None) -> str:
    return "never" if v is None else f"{v:.1f} s"


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _median_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return None
    ok.sort(key=lambda r: r["delivered_per_s"])
    return ok[(len(ok) - 1) // 2]


def report_throughput(runs: dict[str, list[dict[str, Any]]], n: int) -> tuple[str, dict[str, Any]]:
    lines = []
    head = (
        "| SDK (configuration) | delivered ev/s (median) | range over rounds | recording ev/s "
        "| last event at | shutdown returned at | received | not delivered | of which the SDK "
        "reported | peak RSS MiB | RSS growth MiB | CPU s |"
    )
    lines.append(head)
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    med: dict[str, dict[str, Any]] = {}
    for sdk, rows in runs.items():
        m = _median_row(rows)
        if m is None:
            err = rows[0].get("error", "?") if rows else "not run"
            lines.append(f"| {LABELS.get(sdk, sdk)} | ERROR: {err} |" + " |" * 10)
            continue
        med[sdk] = m
        rates = [r["delivered_per_s"] for r in rows if "error" not in r]
        drops = m["reported_drops"]
        drop_txt = f"{m['dropped']:,}" + (
            " (" + ", ".join(f"{k} {v:,}" for k, v in drops.items()) + ")" if drops else ""
        )
        missing = n - m["received"]
        lines.append(
            f"| {LABELS.get(sdk, sdk)} | {m['delivered_per_s']:,.0f} | "
            f"{min(rates):,.0f}–{max(rates):,.0f} | {m['recorded_per_s']:,.0f} | "
            f"{m['elapsed_s']:.2f} s | {m['to_shutdown_s']:.2f} s | {m['received']:,} | "
            f"{missing:,} | {drop_txt} | {m['peak_rss_mib']:.0f} | "
            f"{m['rss_growth_mib']:.0f} | {m['cpu_s']:.1f} |"
        )
    lines.append("")
    lines.append(
        "| SDK (configuration) | delivered while recording | ev/s while recording "
        "| ev/s after the last call | drain after the last call |"
    )
    lines.append("|---|---:|---:|---:|---:|")
    for sdk, m in med.items():
        after = m["delivered_per_s_after_recording"]
        drain = m["drain_after_recording_s"]
        lines.append(
            f"| {LABELS.get(sdk, sdk)} | {m['delivered_while_recording']:,} | "
            f"{m['delivered_per_s_while_recording']:,.0f} | "
            f"{'—' if after is None else f'{after:,.0f}'} | "
            f"{'—' if drain is None else f'{drain:.2f} s'} |"
        )
    lines.append("")
    lines.append(
        f"n = {n:,} events per run, one recording thread. 'delivered ev/s' = distinct events "
        "the sink received / (arrival of the last one - first recording call); the row shown "
        "is the median round. 'last event at' / 'shutdown returned at' count from the first "
        "call. 'not delivered' = n - received; 'of which the SDK reported' = what the SDK "
        "said it dropped (return values, client.stats, on_error, one warning per drop); the "
        "rest was lost without a word (OpenTelemetry logs 'Queue full' once, then filters the "
        "repeats, so its drops show only in the sink's count). Peak RSS "
        "= VmHWM of the SDK's own process; growth = VmHWM - VmRSS just before the first call."
    )
    verdict: dict[str, Any] = {}
    peers = {s: m for s, m in med.items() if not s.startswith("signalkit")}
    if peers:
        best_peer = max(peers, key=lambda s: peers[s]["delivered_per_s"])
        bp = peers[best_peer]["delivered_per_s"]
        lines.append("")
        lines.append(
            f"best peer: {LABELS[best_peer]} at {bp:,.0f} delivered ev/s; target: signalkit "
            f">= {TARGET_FACTOR:g}x = {TARGET_FACTOR * bp:,.0f} ev/s with zero drops"
        )
        for s in ("signalkit", "signalkit-big"):
            if s not in med:
                continue
            m = med[s]
            ratio = m["delivered_per_s"] / bp if bp else float("inf")
            zero = m["dropped"] == 0 and m["unaccounted"] == 0 and m["received"] == n
            ok = ratio >= TARGET_FACTOR and zero
            verdict[s] = {
                "ratio_to_best_peer": ratio,
                "zero_drops": zero,
                "pass": ok,
                "best_peer": best_peer,
            }
            loss = (
                "zero drops"
                if zero
                else f"{m['dropped']:,} dropped, {m['unaccounted']:,} unaccounted"
            )
            lines.append(
                f"  [{'PASS' if ok else 'FAIL'}] {LABELS[s]}: {ratio:.2f}x the best peer, {loss}"
            )
    for sdk, m in med.items():
        if sdk.startswith("signalkit") and "stats" in m:
            st = m["stats"]
            lines.append(
                f"  {sdk} client.stats: recorded {st['recorded']:,}, delivered "
                f"{st['delivered']}, dropped {st['dropped'] or 0}, retried {st['retried']}, "
                f"pending {st['pending']}"
            )
        if m.get("duplicates"):
            lines.append(f"  {sdk}: the sink saw {m['duplicates']:,} duplicate events")
        if m.get("parse_errors"):
            lines.append(f"  {sdk}: {m['parse_errors']} request bodies the sink could not parse")
    return "\n".join(lines), verdict


R3 = {"rss_growth_mib": 32.0, "attempts": 12, "backlog_s": 10.0}


def report_outage(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> tuple[str, dict]:
    lines = []
    lines.append(
        "| SDK (defaults) | RSS at outage start MiB | RSS growth in outage MiB | dropped in "
        "outage | dropped total (by reason) | unaccounted | attempts while down | warnings "
        "while down | outage events delivered | first delivery after recovery | backlog "
        "delivered after recovery |"
    )
    lines.append("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for sdk, r in rows.items():
        if "error" in r:
            lines.append(f"| {LABELS.get(sdk, sdk)} | ERROR: {r['error']} |" + " |" * 9)
            continue
        by = ", ".join(f"{k} {v:,}" for k, v in r["drops_by_reason_end"].items()) or "—"
        frac = r["outage_events_delivered_frac"]
        lines.append(
            f"| {LABELS.get(sdk, sdk)} | {r['rss_at_down_mib']:.0f} | {r['rss_growth_mib']:.1f} "
            f"| {r['dropped_during_outage']:,} | {r['dropped_total']:,} ({by}) | "
            f"{r['unaccounted']:,} | {r['attempts']} | {r['warnings_in_outage']} | "
            f"{r['delivered_by_phase']['o']:,} / {r['recorded']['o']:,}"
            f"{f' ({100 * frac:.0f} %)' if frac is not None else ''} | "
            f"{_fmt_s(r['first_delivery_after_up_s'])} | {_fmt_s(r['backlog_s'])} |"
        )
    lines.append("")
    lines.append(
        f"{args.rate:g} events/s for {args.warmup_seconds:g} s, sink down {args.outage_seconds:g}"
        f" s (accepts and closes), up again for {args.recovery_seconds:g} s, then shutdown() "
        "(bounded to 30 s). 'attempts' = connections + requests the sink saw while down. "
        "'backlog delivered' = arrival of the last event recorded before recovery that was ever "
        "delivered, from the moment the sink came back. 'unaccounted' = recorded - delivered - "
        "reported drops."
    )
    verdict: dict[str, Any] = {}
    r = rows.get("signalkit")
    if r and "error" not in r:
        minutes = max(1.0, args.outage_seconds / 60)
        checks = {
            f"RSS growth <= {R3['rss_growth_mib']:g} MiB": r["rss_growth_mib"]
            <= R3["rss_growth_mib"],
            "drops counted by reason (unaccounted == 0)": r["unaccounted"] == 0,
            f"<= 1 warning a minute ({minutes:g} allowed)": r["warnings_in_outage"] <= minutes,
            f"<= {R3['attempts']} attempts during the outage": r["attempts"] <= R3["attempts"],
            f"backlog delivered <= {R3['backlog_s']:g} s after recovery": r["backlog_s"] is not None
            and r["backlog_s"] <= R3["backlog_s"],
        }
        lines.append("")
        lines.append(
            f"R3 (signalkit, defaults: queue 10k events / 16 MiB), {args.outage_seconds:g} s:"
        )
        for name, ok in checks.items():
            lines.append(f"  [{'PASS' if ok else 'FAIL'}] {name}")
        w = r["warnings_during_outage"]
        if w:
            lines.append(
                f"  warnings while down, by logger: {w}; samples: "
                f"{ {k: v[:2] for k, v in r['warning_samples'].items()} }"
            )
        verdict = {k: bool(v) for k, v in checks.items()}
    return "\n".join(lines), verdict


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--_child"]:
        return child_main(json.loads(argv[1]))
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="events per throughput run (200000)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (3)")
    p.add_argument("--outage-seconds", type=float, default=60.0, help="sink down this long (60)")
    p.add_argument("--rate", type=float, default=2000.0, help="events/s in the outage test")
    p.add_argument("--warmup-seconds", type=float, default=5.0, help="up before the outage (5)")
    p.add_argument("--recovery-seconds", type=float, default=20.0, help="up after it (20)")
    p.add_argument("--only", choices=["throughput", "outage"], help="run one scenario")
    p.add_argument("--sdks", default=",".join(SDKS), help="comma list of " + ",".join(SDKS))
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--profile", metavar="DIR", help="also profile signalkit (cProfile per thread)")
    args = p.parse_args(argv)
    sdks = [s for s in args.sdks.split(",") if s]
    bad = [s for s in sdks if s not in SDKS]
    if bad or args.n < 1 or args.rounds < 1 or args.outage_seconds <= 0 or args.rate <= 0:
        p.error(f"bad arguments (unknown SDKs: {bad})" if bad else "bad arguments")

    sys.path.insert(0, HERE)
    from hot_path import _loadavg, machine, source_state  # the same provenance as hot_path

    t_start = time.monotonic()
    src_before = source_state()
    load_before = _loadavg()
    sink = Sink(max_seconds=3 * 3600)
    results: dict[str, Any] = {
        "command": "uv run --with posthog --with segment-analytics-python --with "
        "opentelemetry-exporter-otlp-proto-http python benchmarks/throughput.py " + " ".join(argv),
        "params": vars(args),
        "machine": machine(),
        "source": src_before,
    }
    texts = []
    ok = True
    try:
        if args.only in (None, "throughput"):
            print(
                f"throughput: {len(sdks)} SDKs x {args.rounds} rounds of {args.n:,} events",
                file=sys.stderr,
                flush=True,
            )
            runs = run_throughput(sink, sdks, args.n, args.rounds, args.profile)
            main_runs = {k: v for k, v in runs.items() if "(profiled)" not in k}
            text, verdict = report_throughput(main_runs, args.n)
            texts.append("Delivered throughput\n\n" + text)
            prof = _profile_text({k: v for k, v in runs.items() if "(profiled)" in k})
            if prof:
                texts.append("Where signalkit's time goes\n\n" + prof)
            results["throughput"] = {"runs": runs, "verdict": verdict}
            for sdk, rows in main_runs.items():
                for r in rows:
                    if "error" in r or (sdk.startswith("signalkit") and r["unaccounted"] != 0):
                        ok = False
        if args.only in (None, "outage"):
            osdks = [s for s in OUTAGE_SDKS if s in sdks]
            rows = run_outage(sink, osdks, args)
            text, verdict = report_outage(rows, args)
            texts.append("Outage\n\n" + text)
            results["outage"] = {"rows": rows, "verdict": verdict}
            for sdk, r in rows.items():
                if "error" in r or (sdk == "signalkit" and r["unaccounted"] != 0):
                    ok = False
    finally:
        sink.close()
    src_after = source_state()
    results["loadavg_before_after"] = [load_before, _loadavg()]
    results["source_changed_during_run"] = src_after["src_sha256"] != src_before["src_sha256"]
    results["elapsed_s"] = round(time.monotonic() - t_start, 1)
    versions = {}
    for section in ("throughput", "outage"):
        data = results.get(section, {})
        rows_iter = (
            [r for rs in data.get("runs", {}).values() for r in rs]
            if section == "throughput"
            else list(data.get("rows", {}).values())
        )
        for r in rows_iter:
            if "version" in r:
                versions[r["sdk"]] = r["version"]
    results["versions"] = versions
    print()
    print("\n\n".join(texts))
    src = src_before
    mach = results["machine"]
    print(
        f"\nsignalkit measured: {src['signalkit_version']} at commit "
        f"{src['git_commit'] or '? (not a git checkout: ' + src['signalkit_path'] + ')'}"
        + (
            f" + uncommitted changes in {', '.join(src['uncommitted_src_changes'])}"
            if src["uncommitted_src_changes"]
            else ""
        )
        + f" (sources sha256 {src['src_sha256']})"
        + (
            "; NOTE: files under src/ changed during the run"
            if results["source_changed_during_run"]
            else ""
        )
    )
    print(f"versions: {versions}")
    print(
        f"machine: {mach['nproc']} CPUs ({mach['cpu']}), {mach['implementation']} "
        f"{mach['python']}; load average before/after: {results['loadavg_before_after'][0]} / "
        f"{results['loadavg_before_after'][1]}; ran in {results['elapsed_s']:.0f} s"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"results written to {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
