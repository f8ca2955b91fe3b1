"""Delivery lanes: each exporter is served on its own, by what its sink says."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

import signalkit as sk

SECRET = "s" * 32


class ScriptedExporter:
    """Answers each export with the next scripted outcome (then SUCCESS), recording attempts."""

    def __init__(
        self, script: Sequence[Any] = (), policy: sk.RetryPolicy | None = None, **limits: int
    ) -> None:
        self.script = list(script)
        self.attempts: list[tuple[float, list[str]]] = []
        self.delivered: list[sk.Event] = []
        self.threads: set[str] = set()
        self.name = limits.pop("name_", None) or "scripted"  # type: ignore[assignment]
        if policy is not None:
            self.retry_policy = policy
        for key, value in limits.items():
            setattr(self, key, value)

    def export(self, batch: Sequence[sk.Event]) -> sk.ExportResult | sk.ExportFailure:
        self.threads.add(threading.current_thread().name)
        self.attempts.append((time.monotonic(), [e.id for e in batch]))
        outcome = self.script.pop(0) if self.script else sk.ExportResult.SUCCESS
        if callable(outcome):
            outcome = outcome(batch)
        if outcome is sk.ExportResult.SUCCESS:
            self.delivered.extend(batch)
        return outcome

    def shutdown(self) -> None:
        pass


class StuckExporter:
    """Hangs on every export until released."""

    name = "stuck"

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, batch: Sequence[sk.Event]) -> sk.ExportResult:
        self.release.wait(30)
        return sk.ExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


QUICK = sk.RetryPolicy(base_s=0.01, cap_s=0.05, pause_s=0.2)


def record(client: sk.Client, n: int) -> list[sk.Event]:
    with client.exposure("s") as exp:
        pass
    events: list[sk.Event] = [exp.event] if exp.event else []
    for i in range(n - 1):
        e = client.action(exp, "clicked", attributes={"i": i})
        assert e is not None
        events.append(e)
    return events


def check_identity(client: sk.Client) -> None:
    stats = client.stats
    for name, mine in stats.exporters.items():
        total = mine.delivered + sum(mine.dropped.values()) + mine.pending
        assert total == stats.recorded, (name, mine, stats.recorded)


def test_a_stuck_exporter_never_holds_back_another() -> None:
    stuck, fast = StuckExporter(), ScriptedExporter()
    client = sk.Client("lanes", exporters=[stuck, fast], secret=SECRET, flush_interval_s=0.05)
    try:
        events = record(client, 50)
        deadline = time.monotonic() + 5
        while len(fast.delivered) < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [e.id for e in fast.delivered] == [e.id for e in events]
        stats = client.stats
        assert stats.exporters["scripted"].delivered == 50
        assert stats.exporters["stuck"].pending > 0
        check_identity(client)
    finally:
        stuck.release.set()
        client.shutdown(5)
    assert client.stats.exporters["stuck"].delivered == 50
    check_identity(client)


def test_a_lane_that_falls_behind_drops_its_oldest_and_counts_them_for_itself() -> None:
    stuck, fast = StuckExporter(), ScriptedExporter()
    client = sk.Client(
        "lanes",
        exporters=[stuck, fast],
        secret=SECRET,
        max_queue=20,
        batch_size=5,
        flush_interval_s=0.01,
        on_queue_full="drop_oldest",
    )
    try:
        for _ in range(10):
            record(client, 10)
            assert client.flush(0.5) is False  # the stuck lane can't finish
        stats = client.stats
        assert stats.exporters["scripted"].delivered == 100
        assert stats.exporters["scripted"].dropped == {}
        assert stats.exporters["stuck"].dropped.get("queue_full", 0) >= 70
        check_identity(client)
    finally:
        stuck.release.set()
        client.shutdown(5)
    check_identity(client)


def test_a_batch_too_large_for_the_sink_is_split_until_it_fits() -> None:
    def refuse_more_than_4(batch: Sequence[sk.Event]) -> Any:
        if len(batch) > 4:
            return sk.ExportFailure(retryable=False, too_large=True, status=413)
        return sk.ExportResult.SUCCESS

    exporter = ScriptedExporter([refuse_more_than_4] * 20)
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        events = record(client, 13)
        assert client.flush(5)
        assert [e.id for e in exporter.delivered] == [e.id for e in events]  # order kept
        assert max(len(ids) for _, ids in exporter.attempts if ids) == 13
        assert client.stats.dropped == {}
    finally:
        client.shutdown(5)


def test_a_single_event_the_sink_finds_too_large_is_dropped_as_too_large() -> None:
    too_large = sk.ExportFailure(retryable=False, too_large=True, status=413, message="big")
    exporter = ScriptedExporter([too_large, too_large])
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        with client.exposure("s"):
            pass
        assert client.flush(5)
        assert client.stats.dropped == {"too_large": 1}
        check_identity(client)
    finally:
        client.shutdown(5)


def test_the_sinks_size_limits_are_respected_before_sending() -> None:
    exporter = ScriptedExporter(max_batch_events=3, max_event_bytes=1500)
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        events = record(client, 8)
        with client.exposure("s") as exp:
            pass
        client.correction(exp, "x" * 2000, "y" * 10)  # over 1,500 bytes as JSON
        assert client.flush(5)
        assert all(len(ids) <= 3 for _, ids in exporter.attempts)
        assert [e.id for e in exporter.delivered][:8] == [e.id for e in events]
        assert client.stats.exporters["scripted"].dropped == {"too_large": 1}
        check_identity(client)
    finally:
        client.shutdown(5)


def test_retries_wait_at_least_the_sinks_retry_after() -> None:
    later = sk.ExportFailure(retryable=True, retry_after_s=0.3, status=429)
    exporter = ScriptedExporter([later], policy=QUICK)
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        record(client, 2)
        assert client.flush(5)
        (t1, ids1), (t2, ids2) = exporter.attempts
        assert t2 - t1 >= 0.3
        assert ids1 == ids2  # the same batch, retried
        assert client.stats.retried == 1
    finally:
        client.shutdown(5)


def test_a_refusal_that_retrying_cannot_fix_drops_the_batch_and_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = sk.ExportFailure(retryable=False, status=400, message="field 'ts' is invalid")
    exporter = ScriptedExporter([bad])
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        record(client, 3)
        assert client.flush(5)
        record(client, 2)  # the lane goes on with the next batch
        assert client.flush(5)
        assert client.stats.dropped == {"rejected": 3}
        assert len(exporter.delivered) == 2
    finally:
        client.shutdown(5)
    assert "field 'ts' is invalid" in caplog.text


def test_refused_credentials_pause_the_exporter_and_keep_its_data() -> None:
    unauthorized = sk.ExportFailure(retryable=False, unauthorized=True, status=401)
    exporter = ScriptedExporter([unauthorized, unauthorized], policy=QUICK)
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        events = record(client, 4)
        assert client.flush(5)
        times = [t for t, _ in exporter.attempts]
        assert times[1] - times[0] >= 0.2
        assert [e.id for e in exporter.delivered] == [e.id for e in events]
        assert client.stats.dropped == {}
    finally:
        client.shutdown(5)


def test_a_batch_that_keeps_failing_is_given_up_after_its_policy() -> None:
    exporter = ScriptedExporter(
        [sk.ExportResult.RETRY] * 3, policy=sk.RetryPolicy(base_s=0.01, max_attempts=3)
    )
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    try:
        record(client, 2)
        assert client.flush(5)
        record(client, 1)
        assert client.flush(5)
        assert client.stats.dropped == {"retries_exhausted": 2}
        assert len(exporter.delivered) == 1
        check_identity(client)
    finally:
        client.shutdown(5)


def test_shutdown_with_a_retrying_lane_returns_within_its_timeout() -> None:
    exporter = ScriptedExporter([sk.ExportResult.RETRY] * 1000, policy=QUICK)
    client = sk.Client("lanes", exporters=[exporter], secret=SECRET)
    record(client, 5)
    started = time.monotonic()
    assert client.shutdown(0.3) is False
    assert time.monotonic() - started < 0.3 + 0.1
    deadline = time.monotonic() + 2  # the attempt in flight at the deadline is counted after it
    while client.stats.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.stats.dropped == {"shutdown": 5}
    check_identity(client)


def test_serverless_mode_delivers_at_flush_on_the_calling_thread_without_threads() -> None:
    before = {t.name for t in threading.enumerate()}
    exporter = ScriptedExporter([sk.ExportResult.RETRY], policy=QUICK)
    client = sk.Client("fn", exporters=[exporter], secret=SECRET, delivery="sync")
    events = record(client, 100)
    client.action(events[0].exposure_id, "")  # rejected: its warning waits for flush
    assert exporter.attempts == []
    assert {t.name for t in threading.enumerate()} == before  # no thread was started
    assert client.flush(5)
    assert exporter.threads == {threading.current_thread().name}
    assert [e.id for e in exporter.delivered] == [e.id for e in events]
    assert client.shutdown(1)
    assert {t.name for t in threading.enumerate()} == before


def _outcomes() -> Any:
    from hypothesis import strategies as st

    failure = st.builds(
        sk.ExportFailure,
        retryable=st.booleans(),
        message=st.text(max_size=20),
        retry_after_s=st.none() | st.floats(min_value=0, max_value=0.02),
        too_large=st.booleans(),
        unauthorized=st.just(False),
        status=st.none() | st.integers(100, 599),
    )

    def boom(batch: Sequence[sk.Event]) -> Any:
        raise RuntimeError("sink bug")

    return st.lists(
        st.sampled_from([sk.ExportResult.RETRY, sk.ExportResult.FAILURE, boom, "junk"]) | failure,
        max_size=6,
    )


def test_a_lane_survives_any_answer_and_accounts_for_every_event() -> None:
    from hypothesis import given, settings

    @settings(max_examples=40, deadline=None)
    @given(script=_outcomes())
    def check(script: list[Any]) -> None:
        exporter = ScriptedExporter(
            [(lambda b, o=o: o) if not callable(o) else o for o in script],
            policy=sk.RetryPolicy(base_s=0.001, cap_s=0.002, max_attempts=4),
        )
        client = sk.Client("lanes", exporters=[exporter], secret=SECRET, batch_size=3)
        try:
            record(client, 7)
            assert client.flush(10)
            check_identity(client)
            exporter.script.clear()  # the sink behaves again
            later = record(client, 1)  # and the lane goes on delivering
            assert client.flush(10)
            assert exporter.delivered[-1].id == later[-1].id
            check_identity(client)
        finally:
            client.shutdown(2)

    check()


def test_creating_and_closing_many_clients_leaves_no_threads_or_files_behind(
    tmp_path: Any,
) -> None:
    import gc
    import os

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    threads_before = threading.active_count()
    fds_before = fds()
    for i in range(300):
        client = sk.Client(
            "hygiene",
            exporters=[sk.MemoryExporter(), sk.JsonlExporter(tmp_path / f"{i % 3}.jsonl")],
            secret=SECRET,
        )
        with client.exposure("s"):
            pass
        assert client.shutdown(5)
    gc.collect()
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == threads_before
    assert fds() <= fds_before
