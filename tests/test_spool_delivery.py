"""Delivery through the durable spool: restarts resume where delivery stopped, a kill -9 loses
nothing older than the documented window, and each exporter reads at its own cursor."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import signalkit as sk
from sinks import FaultySink

SECRET = "s" * 32
REPO = Path(__file__).resolve().parents[1]
QUICK = sk.RetryPolicy(base_s=0.05, cap_s=0.3)


def test_a_restart_delivers_what_the_last_run_left_in_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with FaultySink() as sink:
        sink.down()
        first = sk.Client(
            "svc",
            exporters=[sk.HttpExporter(sink.url, timeout_s=0.5, retry_policy=QUICK)],
            secret=SECRET,
            spool=spool,
            flush_interval_s=0.05,
        )
        with first.exposure("s") as exp:
            pass
        ids = [exp.id] + [first.action(exp, "clicked").id for _ in range(499)]  # type: ignore[union-attr]
        time.sleep(0.3)  # dispatched into the spool
        assert first.shutdown(0.5) is False  # the sink is down: kept in the spool
        assert first.stats.dropped == {}
        assert first.stats.spooled == 500
        assert first.stats.exporters["http"].pending == 500
        sink.up()
        started = time.monotonic()
        second = sk.Client(
            "svc",
            exporters=[sk.HttpExporter(sink.url, timeout_s=0.5, retry_policy=QUICK)],
            secret=SECRET,
            spool=spool,
        )
        assert sink.wait_for_ids(ids, timeout=5)  # without a single new event recorded
        resumed_in = time.monotonic() - started
        assert second.flush(5)
        mine = second.stats.exporters["http"]
        assert mine.recovered == 500
        assert mine.delivered == 500
        assert mine.pending == 0
        second.shutdown(2)
    assert resumed_in < 1.5
    assert set(sink.accepted_ids()) == set(ids)


def test_each_exporter_reads_the_spool_at_its_own_cursor(tmp_path: Path) -> None:
    with FaultySink() as slow_sink:
        slow_sink.down()
        fast = sk.MemoryExporter()
        slow = sk.HttpExporter(slow_sink.url, timeout_s=0.5, retry_policy=QUICK)
        client = sk.Client("svc", exporters=[slow, fast], secret=SECRET, spool=tmp_path / "spool")
        try:
            with client.exposure("s") as exp:
                pass
            for _ in range(99):
                client.action(exp, "clicked")
            deadline = time.monotonic() + 5
            while len(fast.events) < 100 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(fast.events) == 100  # the dead sink holds nobody back
            assert client.stats.exporters["http"].pending == 100
            slow_sink.up()
            assert client.flush(10)
            assert len(set(slow_sink.accepted_ids())) == 100
        finally:
            client.shutdown(2)


def _run_and_kill(spool: Path, url: str, fsync: str, after_s: float) -> list[tuple[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "spool_recorder.py"), str(spool), url, fsync],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    time.sleep(after_s)
    proc.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    out, _ = proc.communicate(timeout=10)
    recorded = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            recorded.append((parts[1], float(parts[2])))
    return [(event_id, killed_at - at) for event_id, at in recorded]


def test_kill_9_loses_nothing_older_than_the_documented_window(tmp_path: Path) -> None:
    # The window: a recorded event reaches the spool with the next batch (flush_interval_s,
    # 0.05 s here) and is durable once appended ("always") — so anything recorded 0.25 s or
    # more before the kill must be delivered after a restart.
    rng = random.Random(5)
    with FaultySink() as sink:
        sink.down()
        spool = tmp_path / "spool"
        recorded: list[tuple[str, float]] = []
        for _ in range(3):
            recorded += _run_and_kill(spool, sink.url, "always", rng.uniform(1.0, 2.0))
        sink.up()
        client = sk.Client(
            "svc",
            exporters=[sk.HttpExporter(sink.url, timeout_s=0.5, retry_policy=QUICK)],
            secret=SECRET,
            spool=spool,
        )
        try:
            old_enough = {event_id for event_id, age in recorded if age >= 0.25}
            assert len(old_enough) > 500
            assert sink.wait_for_ids(old_enough, timeout=15)
            assert client.flush(10)
        finally:
            client.shutdown(2)
        received = sink.accepted_ids()
        assert old_enough <= set(received)
        assert set(received) <= {event_id for event_id, _ in recorded}
        duplicates = len(received) - len(set(received))
        assert duplicates == 0  # nothing was acknowledged twice: the sink was down throughout


def test_a_forked_child_never_shares_the_parents_spool(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    with FaultySink() as sink:
        client = sk.Client(
            "svc",
            exporters=[sk.HttpExporter(sink.url, timeout_s=0.5, retry_policy=QUICK)],
            secret=SECRET,
            spool=spool,
        )
        with client.exposure("parent") as exp:
            pass
        assert client.flush(5)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with client.exposure("child") as child_exp:
                    pass
                code = 0 if client.flush(5) and child_exp.event is not None else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with client.exposure("parent-again") as again:
            pass
        assert client.flush(5)
        client.shutdown(2)
        received = sink.accepted_ids()
        assert len(received) == len(set(received)) == 3
        assert {exp.id, again.id} <= set(received)
    slots = sorted(p.name for p in spool.iterdir() if p.name.startswith("slot-"))
    assert slots == ["slot-0", "slot-1"]  # the child opened its own


SERVERLESS = """
import sys, signalkit as sk
client = sk.Client("fn", exporters=[sk.HttpExporter(sys.argv[1], timeout_s=2)],
                   secret="s" * 32, delivery="sync")
with client.exposure("handler") as exp:
    pass
for i in range(99):
    client.action(exp, "clicked", attributes={"i": i})
ok = client.flush(10)
print("flushed" if ok else "failed", flush=True)
sys.stdin.read()  # the platform freezes the process here
"""


def test_serverless_flush_delivers_everything_before_the_process_is_frozen() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with FaultySink() as sink:
        for _ in range(5):
            sink.reset()
            proc = subprocess.Popen(
                [sys.executable, "-c", SERVERLESS, sink.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "flushed"
            proc.send_signal(signal.SIGSTOP)
            received = len(set(sink.accepted_ids()))
            proc.kill()
            proc.wait(5)
            assert received == 100
