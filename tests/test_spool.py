"""The spool: a durable log between the queue and the exporters, one cursor per exporter.

Real files in ``tmp_path``, real processes (``tests/spool_writer.py``) killed with SIGKILL, real
damage done to the files with ordinary file operations, a real full filesystem where the
machine allows mounting one. Nothing in the spool is patched.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signalkit import ConfigError
from signalkit._spool import AppendResult, Spool, SpoolLocked, SpoolUnavailable
from spool_writer import record

HELPER = Path(__file__).with_name("spool_writer.py")
PAGE = 16384
"""The spool's SQLite page size."""

OpenSpool = Callable[..., Spool]


@pytest.fixture
def open_spool(tmp_path: Path) -> Iterator[OpenSpool]:
    """Open spools (in ``tmp_path/spool`` unless told) and close every one after the test."""
    opened: list[Spool] = []

    def _open(directory: Path | None = None, **options: Any) -> Spool:
        spool = Spool(directory or tmp_path / "spool", **options)
        opened.append(spool)
        return spool

    yield _open
    for spool in opened:
        spool.close()


def records(first: int, count: int, size: int = 256) -> list[bytes]:
    return [record(seq, size) for seq in range(first, first + count)]


def read_all(spool: Spool, cursor: str) -> list[tuple[int, bytes]]:
    """Everything after the cursor's position, without acknowledging it."""
    out: list[tuple[int, bytes]] = []
    while True:
        rows = spool.read(cursor, 1000, after=out[-1][0] if out else None)
        if not rows:
            return out
        out.extend(rows)


def assert_intact(rows: list[tuple[int, bytes]], size: int = 256) -> None:
    for seq, data in rows:
        assert data == record(seq, size), f"record {seq} changed"


def run_helper(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HELPER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kwargs,
    )


# -- appending, reading, acknowledging ------------------------------------------------------------


def test_append_returns_sequence_numbers_and_read_returns_the_same_bytes(
    open_spool: OpenSpool,
) -> None:
    spool = open_spool()
    spool.add_cursor("jsonl")
    first = spool.append(records(1, 3))
    second = spool.append(records(4, 2))
    assert first == AppendResult(last_seq=3, stored=3)
    assert (first.ok, first.first_seq, second.first_seq, second.last_seq) == (True, 1, 4, 5)
    rows = spool.read("jsonl", 10)
    assert [seq for seq, _ in rows] == [1, 2, 3, 4, 5]
    assert_intact(rows)
    assert all(type(data) is bytes for _, data in rows)
    assert spool.last_seq == 5
    assert spool.append([]) == AppendResult(last_seq=5, stored=0)


def test_read_does_not_move_the_cursor_ack_does(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.append(records(1, 5))
    assert spool.read("a", 2) == spool.read("a", 2) == [(1, record(1)), (2, record(2))]
    spool.ack("a", 2)
    assert [seq for seq, _ in spool.read("a", 10)] == [3, 4, 5]
    assert spool.pending("a") == 3
    assert spool.cursors() == {"a": 2}


def test_read_honours_limit_max_bytes_and_after(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.append(records(1, 10, size=100))
    assert [s for s, _ in spool.read("a", 3)] == [1, 2, 3]
    assert [s for s, _ in spool.read("a", 10, max_bytes=250)] == [1, 2]
    assert [s for s, _ in spool.read("a", 10, max_bytes=10)] == [1]  # never stuck on one record
    assert [s for s, _ in spool.read("a", 2, after=6)] == [7, 8]
    assert spool.read("a", 0) == []
    assert spool.read("a", 10, after=10) == []


def test_ack_never_moves_a_cursor_back_nor_past_the_tail(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.append(records(1, 5))
    spool.ack("a", 3)
    spool.ack("a", 1)
    assert spool.cursors() == {"a": 3}
    spool.ack("a", 1_000)
    assert spool.cursors() == {"a": 5}
    assert spool.pending("a") == 0


def test_a_new_cursor_starts_at_the_tail_or_at_the_head(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("first")
    spool.append(records(1, 4))
    assert spool.add_cursor("late") == 4
    assert spool.add_cursor("replay", start="head") == 0
    assert spool.read("late", 10) == []
    assert [s for s, _ in spool.read("replay", 10)] == [1, 2, 3, 4]
    spool.ack("replay", 2)
    assert spool.add_cursor("replay", start="head") == 2  # existing cursors keep their place


def test_records_every_cursor_acknowledged_are_deleted(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.add_cursor("b")
    spool.append(records(1, 10))
    spool.ack("a", 10)
    assert spool.stats()["records"] == 10  # b still needs all of them
    spool.ack("b", 4)
    assert spool.stats()["records"] == 6
    assert spool.stats()["bytes"] == 6 * 256
    spool.ack("b", 10)
    assert (spool.stats()["records"], spool.stats()["bytes"]) == (0, 0)
    assert spool.pending("a") == spool.pending("b") == 0


def test_removing_a_cursor_releases_what_it_held(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.add_cursor("gone")
    spool.append(records(1, 5))
    spool.ack("a", 5)
    assert spool.stats()["records"] == 5
    spool.remove_cursor("gone")
    assert spool.stats()["records"] == 0
    assert spool.cursors() == {"a": 5}


def test_a_slow_cursor_never_blocks_a_fast_one(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("fast")
    spool.add_cursor("slow")
    slow_sink_released = threading.Event()
    slow_got: list[int] = []

    def slow_lane() -> None:
        rows = spool.read("slow", 50)
        slow_sink_released.wait(10)  # a sink that hangs
        spool.ack("slow", rows[-1][0])
        slow_got.extend(seq for seq, _ in rows)

    spool.append(records(1, 50))
    lane = threading.Thread(target=slow_lane)
    lane.start()
    fast_got: list[int] = []
    for batch in range(5):
        spool.append(records(51 + 50 * batch, 50))
        while rows := spool.read("fast", 64):
            fast_got.extend(seq for seq, _ in rows)
            spool.ack("fast", rows[-1][0])
    assert fast_got == list(range(1, 301))  # all delivered while the slow sink hangs
    assert spool.pending("slow") == 300
    slow_sink_released.set()
    lane.join(10)
    assert slow_got == list(range(1, 51))
    assert spool.pending("slow") == 250
    assert spool.stats()["records"] == 250


def test_restart_resumes_each_cursor_where_it_stopped_byte_identical(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Spool(directory) as spool:
        spool.add_cursor("a")
        spool.add_cursor("b")
        spool.append(records(1, 100, size=1024))
        first_read = spool.read("a", 100)
        spool.ack("a", 40)
        spool.ack("b", 70)
    with Spool(directory) as spool:
        assert spool.cursors() == {"a": 40, "b": 70}
        again = read_all(spool, "a")
        assert again == first_read[40:]  # unacknowledged records come back, byte for byte
        assert [s for s, _ in read_all(spool, "b")] == list(range(71, 101))
        assert spool.append([record(101, 1024)]).last_seq == 101  # numbering goes on
        assert spool.stats()["records"] == 61


def test_numbering_never_restarts_after_the_log_empties(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Spool(directory) as spool:
        spool.add_cursor("a")
        spool.append(records(1, 3))
        spool.ack("a", 3)
        assert spool.stats()["records"] == 0
    with Spool(directory) as spool:
        assert spool.last_seq == 3
        assert spool.append([b"x"]).last_seq == 4


# -- size cap and age -----------------------------------------------------------------------------


def test_drop_oldest_makes_room_and_counts_every_dropped_record(open_spool: OpenSpool) -> None:
    spool = open_spool(max_bytes=100 * 256, on_full="drop_oldest")
    spool.add_cursor("a")
    results = [spool.append(records(1 + 10 * i, 10)) for i in range(15)]
    assert all(r.ok for r in results)
    assert sum(r.dropped for r in results) == 50
    stats = spool.stats()
    assert (stats["records"], stats["bytes"], stats["dropped_full"]) == (100, 100 * 256, 50)
    rows = read_all(spool, "a")
    assert [s for s, _ in rows] == list(range(51, 151))  # the newest survive
    assert spool.pending("a") == 100


def test_reject_refuses_a_batch_that_does_not_fit_and_says_how_many(
    open_spool: OpenSpool,
) -> None:
    spool = open_spool(max_bytes=100 * 256, on_full="reject")
    spool.add_cursor("a")
    assert spool.append(records(1, 95)).ok
    refused = spool.append(records(96, 10))
    assert (refused.ok, refused.stored, refused.refused, refused.reason) == (
        False,
        0,
        10,
        "spool_full",
    )
    assert refused.last_seq == 95
    assert spool.stats()["refused_full"] == spool.stats()["refused"] == 10
    assert spool.stats()["records"] == 95  # nothing was dropped
    spool.ack("a", 50)  # delivery makes room again
    assert spool.append(records(96, 10)).ok
    assert spool.stats()["dropped_full"] == 0


def test_a_batch_larger_than_the_whole_spool_is_refused(open_spool: OpenSpool) -> None:
    spool = open_spool(max_bytes=1000)
    result = spool.append(records(1, 5))
    assert (result.ok, result.reason, result.refused) == (False, "too_large", 5)
    assert spool.stats()["records"] == 0


def test_records_older_than_max_age_expire_at_open_and_while_running(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Spool(directory, max_age_s=0.3) as spool:
        spool.add_cursor("a")
        spool.append(records(1, 10))
        time.sleep(0.4)
        spool.append(records(11, 5))  # the call's maintenance pass expires 1-10
        assert spool.stats()["expired"] == 10
        assert [s for s, _ in read_all(spool, "a")] == list(range(11, 16))
    time.sleep(0.4)
    with Spool(directory, max_age_s=0.3) as spool:
        assert spool.stats()["expired"] == 5
        assert spool.stats()["records"] == 0
        assert spool.pending("a") == 0


# -- arguments, lifecycle, threads ---------------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        {"max_bytes": 0},
        {"max_bytes": True},
        {"fsync": "sometimes"},
        {"fsync_interval_ms": 0},
        {"max_age_s": -1},
        {"on_full": "block"},
    ],
)
def test_a_bad_option_is_a_config_error_naming_it(tmp_path: Path, option: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(option))):
        Spool(tmp_path / "spool", **option)


def test_callers_bugs_raise_typed_errors(open_spool: OpenSpool) -> None:
    spool = open_spool()
    with pytest.raises(TypeError, match="bytes"):
        spool.append(["not bytes"])  # type: ignore[list-item]
    with pytest.raises(KeyError, match="add_cursor"):
        spool.read("nobody", 10)
    with pytest.raises(KeyError):
        spool.ack("nobody", 1)
    with pytest.raises(ValueError, match="cursor name"):
        spool.add_cursor("")
    spool.add_cursor("a")
    with pytest.raises(ValueError, match="limit"):
        spool.read("a", -1)


def test_after_close_every_method_is_a_quiet_no_op(open_spool: OpenSpool) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.append(records(1, 3))
    spool.close()
    spool.close()
    assert not spool.usable
    assert spool.append(records(4, 2)) == AppendResult(3, 0, 2, 0, "closed")
    assert spool.read("a", 10) == []
    spool.ack("a", 3)
    assert spool.pending("a") == 0
    assert spool.sync() is False
    assert spool.stats()["refused"] == 2


def test_the_interval_syncer_thread_starts_with_the_first_append_and_ends_with_close(
    tmp_path: Path,
) -> None:
    def syncers() -> int:
        return sum(t.name == "signalkit-spool-sync" for t in threading.enumerate())

    before = syncers()
    spool = Spool(tmp_path / "spool", fsync="interval", fsync_interval_ms=5)
    assert syncers() == before  # no thread before the first record
    spool.append([b"x"])
    assert syncers() == before + 1
    assert spool.sync()
    spool.close()
    assert syncers() == before


def test_one_writer_and_two_lanes_in_threads_deliver_everything_in_order(
    open_spool: OpenSpool,
) -> None:
    spool = open_spool(fsync="interval")
    spool.add_cursor("a")
    spool.add_cursor("b")
    total = 5000
    got: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for start in range(1, total + 1, 100):
                assert spool.append(records(start, 100, size=64)).ok
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def lane(name: str) -> None:
        try:
            deadline = time.monotonic() + 20
            while len(got[name]) < total and time.monotonic() < deadline:
                rows = spool.read(name, 137)
                got[name].extend(seq for seq, _ in rows)
                if rows:
                    spool.ack(name, rows[-1][0])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=lane, args=(n,)) for n in ("a", "b")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert got["a"] == got["b"] == list(range(1, total + 1))
    assert spool.stats()["records"] == 0


def test_backlog_drains_faster_than_5k_records_per_second_while_appends_go_on(
    open_spool: OpenSpool,
) -> None:
    """R4: after an outage the lane drains >= 5k ev/s while the worker keeps appending."""
    spool = open_spool(fsync="interval")
    spool.add_cursor("sink")
    batch = [record(0, 1024)] * 512
    for _ in range(20):
        spool.append(batch)  # a 10k backlog of 1 KiB records
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            spool.append(batch[:50])
            time.sleep(0.05)  # ~1k events/s keep arriving

    thread = threading.Thread(target=worker)
    thread.start()
    drained = 0
    started = time.perf_counter()
    try:
        while drained < 10_240:
            rows = spool.read("sink", 512)
            spool.ack("sink", rows[-1][0])
            drained += len(rows)
    finally:
        stop.set()
        thread.join()
    rate = drained / (time.perf_counter() - started)
    assert rate >= 5_000, f"drained {rate:.0f} records/s"


# -- processes: one spool per directory, fork, kill -9 -------------------------------------------


def test_a_second_spool_on_the_same_directory_is_refused(
    tmp_path: Path, open_spool: OpenSpool
) -> None:
    directory = tmp_path / "spool"
    open_spool(directory)
    with pytest.raises(SpoolLocked, match="in use by another Spool") as caught:
        Spool(directory)
    assert isinstance(caught.value, ConfigError)


def test_another_process_cannot_open_a_held_directory_until_it_dies(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    holder = subprocess.Popen(
        [sys.executable, str(HELPER), "hold", str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(SpoolLocked, match=f"pid {holder.pid}"):
            Spool(directory)
        slot = Spool.open_slot(tmp_path / "slots")  # what each process should do instead
        other = Spool.open_slot(tmp_path / "slots")
        assert (slot.directory.name, other.directory.name) == ("slot-0", "slot-1")
        other.close()
        slot.close()
    finally:
        holder.kill()
        holder.wait()
    Spool(directory).close()  # the kernel released the dead holder's lock


def test_open_slot_raises_when_every_slot_is_held(tmp_path: Path) -> None:
    held = [Spool.open_slot(tmp_path, max_slots=2) for _ in range(2)]
    try:
        with pytest.raises(SpoolLocked, match="slots"):
            Spool.open_slot(tmp_path, max_slots=2)
    finally:
        for spool in held:
            spool.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork() is POSIX only")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_never_uses_the_parents_spool(tmp_path: Path) -> None:
    parent_dir = tmp_path / "parent"
    spool = Spool(parent_dir)
    spool.add_cursor("a")
    spool.append([b"parent-1"])
    stop = threading.Event()

    def busy_worker() -> None:  # forks happen while this thread holds the spool's lock
        while not stop.is_set():
            spool.read("a", 10)

    worker = threading.Thread(target=busy_worker)
    worker.start()
    reports = []
    try:
        for _ in range(5):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    result = spool.append([b"child"])
                    report: dict[str, Any] = {
                        "usable": spool.usable,
                        "append": [result.ok, result.reason],
                        "read": spool.read("a", 10),
                    }
                    spool.ack("a", 1)
                    spool.close()
                    try:
                        Spool(parent_dir).close()
                        report["parent_dir"] = "opened"
                    except SpoolLocked:
                        report["parent_dir"] = "locked"
                    own = Spool.open_slot(tmp_path / "children")
                    report["own_spool"] = own.append([b"mine"]).ok
                    own.close()
                    os.write(write_end, json.dumps(report).encode())
                except BaseException:
                    os.write(write_end, traceback.format_exc().encode())
                    code = 1
                os._exit(code)
            os.close(write_end)
            deadline = time.monotonic() + 10
            while (status := os.waitpid(pid, os.WNOHANG)) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    pytest.fail("the forked child hung")
                time.sleep(0.01)
            with os.fdopen(read_end, "rb") as pipe:
                output = pipe.read().decode()
            assert os.waitstatus_to_exitcode(status[1]) == 0, output
            reports.append(json.loads(output))
    finally:
        stop.set()
        worker.join()
    for report in reports:
        assert report == {
            "usable": False,
            "append": [False, "forked"],
            "read": [],
            "parent_dir": "locked",  # the parent's lock survived the child closing its copy
            "own_spool": True,
        }
    assert spool.append([b"parent-2"]).ok  # the parent's connection is unharmed
    assert spool.read("a", 10) == [(1, b"parent-1"), (2, b"parent-2")]
    with pytest.raises(SpoolLocked):
        Spool(parent_dir)
    spool.close()
    with Spool(parent_dir) as again:
        assert again.read("a", 10) == [(1, b"parent-1"), (2, b"parent-2")]


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_kill_9_loses_no_committed_record(tmp_path: Path, fsync: str) -> None:
    """R5: a writer killed at 5 random points; every seq it saw committed is there, intact.

    A process kill loses nothing committed under every policy: a commit is in the OS page
    cache when ``append`` returns. (What ``interval`` and ``never`` can lose is on a power loss,
    which no test here can cause.)
    """
    rng = random.Random()
    runs = []
    for n in range(5):
        directory = tmp_path / f"run-{n}"
        process = subprocess.Popen(
            [sys.executable, str(HELPER), "loop", str(directory), fsync, "512", "64"],
            stdout=subprocess.PIPE,
        )
        runs.append((directory, process, rng.uniform(0.02, 0.6)))
    printed: dict[Path, list[bytes]] = {}

    def kill_later(directory: Path, process: subprocess.Popen[bytes], delay: float) -> None:
        assert process.stdout is not None
        first = process.stdout.readline()  # it has started committing
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        printed[directory] = [first, *process.stdout.read().splitlines(keepends=True)]
        process.wait()

    killers = [threading.Thread(target=kill_later, args=run) for run in runs]
    for t in killers:
        t.start()
    for t in killers:
        t.join(30)
    for directory, process, _ in runs:
        assert process.returncode == -signal.SIGKILL
        committed = [int(line) for line in printed[directory] if line.endswith(b"\n")]
        assert committed, "the writer never committed"
        with Spool(directory) as spool:
            spool.add_cursor("check", start="head")
            rows = read_all(spool, "check")
            assert_intact(rows, size=512)
            seqs = [seq for seq, _ in rows]
            assert seqs == list(range(1, len(seqs) + 1))  # no hole, no torn batch
            assert len(seqs) % 64 == 0
            assert seqs[-1] >= committed[-1]
            assert spool.stats()["corrupt"] == 0


# -- damage: torn, flipped, missing, unreadable, locked, full -----------------------------------


def crashed_spool(directory: Path, count: int = 2000, batch: int = 100) -> Path:
    """A spool whose writer died without closing it: its commits are all in the WAL."""
    done = run_helper("exit", str(directory), str(count), str(batch))
    assert done.returncode == 0, done.stderr
    wal = directory / "spool.db-wal"
    assert wal.stat().st_size > count * 256
    return wal


def test_a_torn_wal_tail_loses_whole_batches_from_the_end_only(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    wal = crashed_spool(directory)
    with wal.open("r+b") as f:
        f.truncate(wal.stat().st_size // 2 + 1234)  # cut in the middle of a frame
    with Spool(directory) as spool:
        spool.add_cursor("check", start="head")
        rows = read_all(spool, "check")
        assert_intact(rows)
        seqs = [seq for seq, _ in rows]
        assert 0 < len(seqs) < 2000
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) % 100 == 0  # a batch is all there or not at all
        assert spool.last_seq == seqs[-1]
        assert spool.append([record(seqs[-1] + 1)]).ok


def test_a_wal_deleted_after_a_crash_reopens_empty(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    wal = crashed_spool(directory)
    wal.unlink()
    (directory / "spool.db-shm").unlink()
    with Spool(directory) as spool:
        assert spool.append([b"x"]).ok


def test_a_wal_without_its_database_is_set_aside(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    crashed_spool(directory)
    (directory / "spool.db").unlink()
    with Spool(directory) as spool:
        assert spool.stats()["records"] == 0
        assert spool.append([b"x"]).ok
    assert list(directory.glob("spool.db-wal.orphan-*"))


def full_spool_file(directory: Path, count: int = 2000, size: int = 1024) -> Path:
    """A closed spool of ``count`` records (checkpointed: all in ``spool.db``)."""
    with Spool(directory) as spool:
        for start in range(1, count + 1, 100):
            spool.append(records(start, 100, size=size))
    db = directory / "spool.db"
    assert not (directory / "spool.db-wal").exists()
    return db


def test_flipped_bytes_in_a_record_lose_only_that_record(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    db = full_spool_file(directory)
    content = bytearray(db.read_bytes())
    where = content.find(b"%012d:" % 777)
    assert where > 0
    assert content.count(b"%012d:" % 777) == 1
    content[where + 100] ^= 0xFF
    content[where + 101] ^= 0x5A
    db.write_bytes(bytes(content))
    with Spool(directory) as spool:
        spool.add_cursor("check", start="head")
        rows = read_all(spool, "check")
        assert_intact(rows, size=1024)
        assert [s for s, _ in rows] == [s for s in range(1, 2001) if s != 777]
        assert spool.stats()["corrupt"] == 1
        assert spool.stats()["records"] == 1999


def test_a_truncated_database_is_set_aside_and_what_is_readable_salvaged(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "spool"
    db = full_spool_file(directory)
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 2)
    with Spool(directory) as spool:
        spool.add_cursor("check", start="head")
        rows = read_all(spool, "check")
        assert_intact(rows, size=1024)
        stats = spool.stats()
        assert stats["recoveries"] == 1
        assert 0 < len(rows) < 2000
        assert stats["corrupt"] == 2000 - len(rows)  # every lost record counted
        assert spool.append([record(2001)]).last_seq == 2001  # numbering goes on
    assert len(list(directory.glob("spool.db.corrupt-*"))) == 1


def test_a_damaged_page_loses_only_the_records_on_it(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    db = full_spool_file(directory)
    with Spool(directory) as spool:
        spool.add_cursor("a", start="head")
    pages = db.stat().st_size // PAGE
    with db.open("r+b") as f:  # garbage over one b-tree page in the middle of the log
        f.seek(PAGE * (pages // 2))
        f.write(random.Random(7).randbytes(PAGE))
    with Spool(directory) as spool:
        spool.add_cursor("check", start="head")
        rows = read_all(spool, "check")  # the damage is found here, the read goes on
        assert_intact(rows, size=1024)
        seqs = [s for s, _ in rows]
        assert 1900 < len(seqs) < 2000  # one page holds ~15 records
        assert seqs == sorted(seqs)
        assert spool.stats()["corrupt"] == 2000 - len(seqs)
        assert spool.stats()["recoveries"] == 1
        assert spool.cursors()["a"] == 0


@pytest.mark.parametrize("damage", ["garbage", "header", "directory", "newer_format"])
def test_an_unreadable_database_is_set_aside_and_a_fresh_one_started(
    tmp_path: Path, damage: str
) -> None:
    directory = tmp_path / "spool"
    db = full_spool_file(directory, count=100)
    if damage == "garbage":
        db.write_bytes(random.Random(1).randbytes(50_000))
    elif damage == "header":
        with db.open("r+b") as f:
            f.write(b"SQLite format 2\x00")
    elif damage == "directory":  # root reads any file: a directory is what it cannot open
        db.unlink()
        db.mkdir()
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA user_version = 99")
        conn.close()
    with Spool(directory) as spool:
        stats = spool.stats()
        assert stats["recoveries"] == 1
        if damage == "newer_format":  # set aside too, but its records pass their checksums
            assert (stats["records"], stats["corrupt"]) == (100, 0)
        else:
            assert (stats["records"], stats["corrupt"]) == (0, 1)
        spool.add_cursor("a")
        assert spool.append([b"x"]).ok
    assert len(list(directory.glob("spool.db.corrupt-*"))) == 1
    with Spool(directory) as spool:  # and the fresh one is healthy
        assert spool.stats()["recoveries"] == 0
        assert spool.pending("a") == 1
        assert spool.read("a", 10)[-1][1] == b"x"


def test_at_most_three_damaged_databases_are_kept(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    for _ in range(5):
        with Spool(directory) as spool:
            spool.append([b"x"])
        (directory / "spool.db").write_bytes(b"not a database" * 100)
    Spool(directory).close()
    assert len(list(directory.glob("spool.db.corrupt-*"))) == 3


def wait_for_maintenance() -> None:
    time.sleep(0.3)  # every call runs a maintenance pass at most every 0.25 s


@pytest.mark.parametrize("deleted", ["database", "wal", "directory", "lock"])
def test_files_deleted_while_open_are_restored_without_loss(tmp_path: Path, deleted: str) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory, fsync="always")
    spool.add_cursor("a")
    spool.append(records(1, 100))
    spool.ack("a", 10)
    if deleted == "directory":
        shutil.rmtree(directory)
    else:
        name = {"database": "spool.db", "wal": "spool.db-wal", "lock": "spool.lock"}[deleted]
        (directory / name).unlink()
    wait_for_maintenance()
    assert spool.append(records(101, 10)).ok
    assert spool.usable
    spool.close()
    with Spool(directory) as again:
        assert again.cursors() == {"a": 10}
        rows = read_all(again, "a")
        assert [s for s, _ in rows] == list(range(11, 111))
        assert_intact(rows)
    assert not list(directory.glob("*.rescue*"))


def test_a_foreign_lock_on_the_database_refuses_appends_quickly(
    open_spool: OpenSpool, tmp_path: Path
) -> None:
    spool = open_spool()
    spool.add_cursor("a")
    spool.append(records(1, 5))
    foreign = sqlite3.connect(tmp_path / "spool" / "spool.db", isolation_level=None, timeout=0)
    foreign.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        started = time.monotonic()
        refused = spool.append(records(6, 5))
        assert time.monotonic() - started < 1.0
        assert (refused.ok, refused.reason, refused.refused) == (False, "busy", 5)
        assert [s for s, _ in spool.read("a", 10)] == [1, 2, 3, 4, 5]  # reads go on (WAL)
        spool.ack("a", 2)  # kept in memory, written later
        assert spool.cursors() == {"a": 2}
    finally:
        foreign.execute("ROLLBACK")
        foreign.close()
    assert spool.append(records(6, 5)).ok
    assert spool.stats()["errors"] >= 2
    assert [s for s, _ in spool.read("a", 10)] == [3, 4, 5, 6, 7, 8, 9, 10]


def test_a_foreign_exclusive_lock_at_open_is_unavailable_not_damage(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    full_spool_file(directory, count=100)
    foreign = sqlite3.connect(directory / "spool.db", isolation_level=None)
    foreign.execute("PRAGMA locking_mode = EXCLUSIVE")
    foreign.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SpoolUnavailable, match="holds a lock"):
            Spool(directory)
    finally:
        foreign.execute("ROLLBACK")
        foreign.close()
    with Spool(directory) as spool:
        assert spool.stats()["records"] == 100  # nothing was set aside
        assert spool.stats()["recoveries"] == 0


def test_a_directory_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SpoolUnavailable, match="cannot be used") as caught:
        Spool(tmp_path / "file" / "spool")
    assert isinstance(caught.value, ConfigError)


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {probe}"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def test_a_full_disk_refuses_appends_and_recovers_when_space_returns(tmp_path: Path) -> None:
    """A real ENOSPC: a 3 MiB tmpfs in a private mount namespace (needs CAP_SYS_ADMIN)."""
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("cannot mount a tmpfs here (needs unshare and CAP_SYS_ADMIN)")
    mount = tmp_path / "small"
    mount.mkdir()
    script = (
        'mount -t tmpfs -o size=3m tmpfs "$1" && head -c 1048576 /dev/zero > "$1/filler" '
        '&& exec "$2" "$3" disk-full "$1"'
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(mount), sys.executable, str(HELPER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["refused"] == {"reason": "disk_full", "refused": 8}
    assert report["errors"] >= 1
    assert report["after"]["ok"] is True  # space came back: appending works again
    assert report["read"] == report["after"]["last_seq"]
    assert report["intact"]
    assert report["seqs_contiguous"]


def test_a_file_size_limit_refuses_appends_and_recovers_when_lifted(tmp_path: Path) -> None:
    """The same with RLIMIT_FSIZE (EFBIG): works without privileges."""
    done = run_helper("file-size-limit", str(tmp_path / "spool"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["refused"]["reason"] in ("disk_full", "io_error")
    assert report["refused"]["refused"] == 8
    assert report["after"]["ok"] is True
    assert report["read"] == report["after"]["last_seq"]
    assert report["intact"]
    assert report["seqs_contiguous"]
