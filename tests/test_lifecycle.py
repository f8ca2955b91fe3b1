"""Delivery over a process's life: many threads and tasks, concurrent flushes, interpreter exit."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import signalkit as sk
from signalkit.events import read_jsonl

SECRET = "s" * 32


def run_script(code: str, *args: str, timeout: float = 60) -> tuple[str, float]:
    """Run ``code`` in a fresh interpreter; return its stdout and when it exited (time.time)."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    ended = time.time()
    assert out.returncode == 0, out.stderr
    return out.stdout, ended


# -- concurrency ---------------------------------------------------------------------------------


def test_threads_recording_while_others_flush_lose_nothing(memory: sk.MemoryExporter) -> None:
    client = sk.Client("svc", exporters=[memory], secret=SECRET, batch_size=64)
    errors: list[BaseException] = []
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        with client.exposure("s") as exp:
            pass
        assert exp.event is not None
        accepted.append(exp.event.id)

        def record() -> None:
            try:
                mine = [client.action(exp.token, "clicked") for _ in range(500)]
                with lock:
                    accepted.extend(e.id for e in mine if e is not None)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def flush_repeatedly() -> None:
            try:
                while not stop.is_set():
                    client.flush(timeout=5)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        recorders = [threading.Thread(target=record) for _ in range(8)]
        flushers = [threading.Thread(target=flush_repeatedly) for _ in range(4)]
        for t in recorders + flushers:
            t.start()
        for t in recorders:
            t.join()
        stop.set()
        for t in flushers:
            t.join()
        assert client.flush(timeout=5)

        assert errors == []
        assert len(accepted) == 1 + 8 * 500
        delivered = [e.id for e in memory.events]
        assert sorted(delivered) == sorted(accepted)  # each exactly once
        stats = client.stats
        assert stats.recorded == stats.delivered["MemoryExporter"] == len(accepted)
        assert stats.pending == 0
    finally:
        stop.set()
        client.shutdown(timeout=2)


async def test_coroutines_recording_concurrently_lose_nothing(memory: sk.MemoryExporter) -> None:
    client = sk.Client("svc", exporters=[memory], secret=SECRET)
    try:
        with client.exposure("s") as exp:
            pass

        async def user(n: int) -> list[str]:
            ids = []
            for _ in range(20):
                event = client.action(exp, "clicked", attributes={"user": n})
                assert event is not None
                ids.append(event.id)
                await asyncio.sleep(0)
            return ids

        results = await asyncio.gather(*(user(n) for n in range(50)), client.aflush(5))
        assert await client.aflush(5)
        accepted = {i for ids in results[:-1] for i in ids}  # type: ignore[union-attr]
        assert len(accepted) == 1000
        assert {e.id for e in memory.events} == accepted | {exp.id}
    finally:
        client.shutdown(timeout=2)


# -- the end of a process ------------------------------------------------------------------------


def test_events_still_queued_at_interpreter_exit_are_delivered(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    run_script(
        """
        import sys
        import signalkit as sk

        client = sk.Client(
            "svc", exporters=[sk.JsonlExporter(sys.argv[1])], secret="s" * 32,
            flush_interval_s=60,
        )
        with client.exposure("s") as exp:
            pass
        for _ in range(99):
            client.action(exp, "clicked")
        # no flush(), no shutdown(): a short-lived script simply ends
        """,
        str(path),
    )
    events = list(read_jsonl(path.read_bytes().splitlines()))
    assert len(events) == 100
    assert [e.seq for e in events] == list(range(1, 101))


def test_events_recorded_through_the_default_client_are_delivered_at_exit(
    tmp_path: Path,
) -> None:
    run_script(
        """
        import os, sys
        os.environ["SIGNALKIT_DIR"] = sys.argv[1]
        os.environ["SIGNALKIT_SECRET"] = "s" * 32
        import signalkit as sk

        @sk.recommendation("reply-draft")
        def draft():
            return "hi"

        draft()
        sk.action(sk.current_exposure().token, "accepted")
        """,
        str(tmp_path),
    )
    events = list(read_jsonl((tmp_path / "events.jsonl").read_bytes().splitlines()))
    assert [e.kind for e in events] == ["exposure", "action"]


def test_interpreter_exit_waits_no_longer_than_exit_timeout_for_a_hung_exporter() -> None:
    stdout, ended = run_script(
        """
        import threading, time
        import signalkit as sk

        class Hung:
            def export(self, batch):
                threading.Event().wait(60)
                return sk.ExportResult.SUCCESS

            def shutdown(self):
                pass

        client = sk.Client("svc", exporters=[Hung()], secret="s" * 32, exit_timeout_s=0.5)
        with client.exposure("s"):
            pass
        print(time.time())
        """
    )
    finished_script = float(stdout.strip())
    assert ended - finished_script < 0.5 + 1.0  # the budget, plus interpreter teardown


# -- a misconfigured environment -----------------------------------------------------------------

_MISCONFIGURED = """
import os, sys
os.environ["SIGNALKIT_SECRET"] = "short"  # refused: under 16 bytes
os.environ["SIGNALKIT_DIR"] = sys.argv[1]
import signalkit as sk
"""


def test_module_level_recording_never_raises_when_the_environment_is_misconfigured(
    tmp_path: Path,
) -> None:
    stdout, _ = run_script(
        _MISCONFIGURED
        + """
try:
    print(sk.action("01a21012-058c-7454-b08e-33c2e0352a53", "accepted"))
except Exception as exc:
    print("raised", type(exc).__name__)
""",
        str(tmp_path),
    )
    assert stdout.strip() == "None"


def test_a_decorated_call_returns_its_result_when_the_environment_is_misconfigured(
    tmp_path: Path,
) -> None:
    stdout, _ = run_script(
        _MISCONFIGURED
        + """
@sk.recommendation("reply-draft")
def draft():
    return "the reply"

try:
    print(draft())
except Exception as exc:
    print("raised", type(exc).__name__)
""",
        str(tmp_path),
    )
    assert stdout.strip() == "the reply"


# -- the caller's thread never does I/O ----------------------------------------------------------


def test_recording_calls_do_no_file_or_socket_io_on_the_callers_thread(tmp_path: Path) -> None:
    stdout, _ = run_script(
        """
        import json, sys, threading
        seen = []
        watching = False
        caller = threading.get_ident()

        def hook(event, args):
            if watching and threading.get_ident() == caller:
                seen.append(event)

        sys.addaudithook(hook)
        import logging
        import signalkit as sk

        logging.getLogger("signalkit").disabled = True  # the app's log handlers are its own I/O
        client = sk.Client(
            "svc", exporters=[sk.JsonlExporter(sys.argv[1])], secret="s" * 32, batch_size=8
        )
        watching = True
        with client.exposure("s", model="m") as exp:
            exp.items = ["a", sk.Item(id="b", propensity=0.5)]
        token = exp.token
        for i in range(50):
            client.action(exp, "accepted")
            client.action(token, "clicked", attributes={"i": i})
            client.correction(exp, "draft", "edited draft")
            client.toggle(exp.id, "expanded")
            client.toggle(exp.id, "collapsed")
            client.outcome(exp, "purchase", value=1.0)
            client.feedback(exp, rating=1)
        client.action("sk1.bad", "accepted")
        client.action(exp, "")
        watching = False
        assert client.flush(5)
        print(json.dumps(sorted(set(seen))))
        """,
        str(tmp_path / "events.jsonl"),
    )
    events = json.loads(stdout)
    io_events = [
        e
        for e in events
        if e == "open" or e.split(".")[0] in {"os", "socket", "subprocess", "shutil", "fcntl"}
    ]
    assert io_events == []
    assert len((tmp_path / "events.jsonl").read_bytes().splitlines()) == 1 + 50 * 7
