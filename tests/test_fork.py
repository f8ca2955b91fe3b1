"""fork(): a child is a new producer with its own queue and worker; nothing is delivered twice.

Reproduces the pre-fork server pattern (gunicorn ``--preload``, Celery): a client made and used
in the parent, then the process forks. Each child runs real signalkit code and leaves with
``os._exit``; the parent reads what each process wrote to real JSONL files.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import signalkit as sk
from signalkit.events import read_jsonl

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only"),
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]

SECRET = "s" * 32


class PerProcessJsonl:
    """A real exporter: each process appends its events to ``<directory>/<pid>.jsonl``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[int, sk.JsonlExporter] = {}

    def export(self, batch: Sequence[sk.Event]) -> sk.ExportResult:
        pid = os.getpid()
        if pid not in self._files:
            self._files[pid] = sk.JsonlExporter(self.directory / f"{pid}.jsonl")
        return self._files[pid].export(batch)

    def shutdown(self) -> None:
        for exporter in self._files.values():
            exporter.shutdown()


class HeldInParent(PerProcessJsonl):
    """Like :class:`PerProcessJsonl`, but the parent's exports wait until released."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.parent = os.getpid()
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, batch: Sequence[sk.Event]) -> sk.ExportResult:
        if os.getpid() == self.parent:
            self.entered.set()
            self.release.wait(timeout=30)
        return super().export(batch)


def in_child(body: Callable[[], dict[str, Any]], report: Path) -> tuple[int, dict[str, Any]]:
    """Run ``body`` in a forked child; return the child's pid and what it reported.

    The child writes ``body()``'s result (or its traceback) to ``report`` and leaves with
    ``os._exit``; a child stuck for 10 s is killed by an alarm, so a deadlock fails the test.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; coverage cannot see it
        code = 1
        try:
            signal.alarm(10)
            result = body()
            report.write_text(json.dumps(result))
            code = 0
        except BaseException:
            report.write_text(json.dumps({"error": traceback.format_exc()}))
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not finish")
        time.sleep(0.01)
    result = json.loads(report.read_text()) if report.exists() else {}
    assert os.waitstatus_to_exitcode(status) == 0, result.get("error", f"status {status}")
    return pid, result


def lines_of(path: Path) -> list[sk.Event]:
    return list(read_jsonl(path.read_bytes().splitlines())) if path.exists() else []


def test_a_forked_child_is_a_new_producer_that_delivers_only_its_own_events(
    tmp_path: Path,
) -> None:
    client = sk.Client(
        "svc", exporters=[PerProcessJsonl(tmp_path)], secret=SECRET, flush_interval_s=60
    )
    try:
        with client.exposure("reply-draft") as exp:
            pass
        parent_events = [exp.event, *(client.action(exp, "clicked") for _ in range(20))]
        parent_ids = [e.id for e in parent_events if e is not None]
        assert len(parent_ids) == 21
        assert client.stats.pending == 21  # queued, not yet delivered, when the process forks
        parent_producer = client.producer_id

        def child() -> dict[str, Any]:
            stats = client.stats
            assert (stats.recorded, stats.pending, stats.exported) == (0, 0, 0)
            events = [client.action(exp, "accepted") for _ in range(5)]
            events.append(client.outcome(exp.token, "resolved", success=True))
            assert client.flush(5)
            return {
                "producer_id": client.producer_id,
                "ids": [e.id for e in events if e is not None],
                "seqs": [e.seq for e in events if e is not None],
                "recorded": client.stats.recorded,
            }

        child_pid, child = in_child(child, tmp_path / "child.json")

        assert child["producer_id"] != parent_producer
        assert child["seqs"] == [1, 2, 3, 4, 5, 6]
        assert child["recorded"] == 6

        child_lines = lines_of(tmp_path / f"{child_pid}.jsonl")
        assert [e.id for e in child_lines] == child["ids"]
        assert {e.producer_id for e in child_lines} == {child["producer_id"]}
        assert not set(parent_ids) & {e.id for e in child_lines}

        assert client.flush(5)
        parent_lines = lines_of(tmp_path / f"{os.getpid()}.jsonl")
        assert Counter(e.id for e in parent_lines) == Counter(parent_ids)  # each exactly once
        assert [e.seq for e in parent_lines] == list(range(1, 22))
        assert {e.producer_id for e in parent_lines} == {parent_producer}
        assert client.producer_id == parent_producer  # the parent is unchanged by the fork
    finally:
        client.shutdown(timeout=2)


def test_parent_and_child_sharing_one_jsonl_file_write_every_event_exactly_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    client = sk.Client(
        "svc", exporters=[sk.JsonlExporter(path)], secret=SECRET, flush_interval_s=60
    )
    try:
        with client.exposure("s") as exp:
            pass
        parent_ids = [exp.id] + [
            e.id for e in (client.action(exp, "clicked") for _ in range(50)) if e is not None
        ]

        def child() -> dict[str, Any]:
            events = [client.toggle(exp, "expanded") for _ in range(30)]
            assert client.shutdown(5)
            return {"producer_id": client.producer_id, "ids": [e.id for e in events if e]}

        _, child = in_child(child, tmp_path / "child.json")
        assert client.flush(5)

        lines = lines_of(path)
        counts = Counter(e.id for e in lines)
        assert set(counts.values()) == {1}
        assert set(counts) == set(parent_ids) | set(child["ids"])
        by_producer: dict[str, list[int]] = {}
        for e in lines:
            by_producer.setdefault(e.producer_id, []).append(e.seq)
        assert sorted(by_producer[child["producer_id"]]) == list(range(1, 31))
        assert sorted(by_producer[client.producer_id]) == list(range(1, 52))
    finally:
        client.shutdown(timeout=2)


def test_a_client_made_before_fork_and_used_only_in_the_child_works(tmp_path: Path) -> None:
    # gunicorn --preload: configured in the master, first used in a worker
    client = sk.Client("svc", exporters=[PerProcessJsonl(tmp_path)], secret=SECRET)
    try:

        def child() -> dict[str, Any]:
            with client.exposure("s") as exp:
                pass
            client.action(exp, "accepted")
            assert client.flush(5)
            return {"ids": [exp.id]}

        child_pid, child = in_child(child, tmp_path / "child.json")
        child_lines = lines_of(tmp_path / f"{child_pid}.jsonl")
        assert [e.kind for e in child_lines] == ["exposure", "action"]
        assert child_lines[0].id == child["ids"][0]
        assert [e.seq for e in child_lines] == [1, 2]
        assert client.stats.recorded == 0  # the parent recorded nothing
    finally:
        client.shutdown(timeout=2)


def test_a_child_forked_while_the_parent_is_exporting_never_deadlocks(tmp_path: Path) -> None:
    exporter = HeldInParent(tmp_path)
    client = sk.Client("svc", exporters=[exporter], secret=SECRET, batch_size=1)
    try:
        with client.exposure("s") as exp:
            pass
        assert exporter.entered.wait(5)  # the parent's worker is inside export()
        client.action(exp, "clicked")  # and more is queued behind it

        pids = []
        for i in range(10):

            def child() -> dict[str, Any]:
                event = client.action(exp, "accepted")
                assert event is not None
                assert event.seq == 1
                assert client.flush(5)
                return {"id": event.id}

            pid, result = in_child(child, tmp_path / f"child-{i}.json")
            pids.append(pid)
            assert [e.id for e in lines_of(tmp_path / f"{pid}.jsonl")] == [result["id"]]

        exporter.release.set()
        assert client.flush(5)
        parent_lines = lines_of(tmp_path / f"{os.getpid()}.jsonl")
        assert [e.seq for e in parent_lines] == [1, 2]
    finally:
        exporter.release.set()
        client.shutdown(timeout=2)


def test_ids_made_in_a_child_differ_from_the_parents(tmp_path: Path) -> None:
    from signalkit._ids import new_id

    def child() -> dict[str, Any]:
        return {"ids": [new_id() for _ in range(100)]}

    _, first = in_child(child, tmp_path / "a.json")
    _, second = in_child(child, tmp_path / "b.json")
    mine = {new_id() for _ in range(100)}
    assert len(set(first["ids"]) | set(second["ids"]) | mine) == 300
