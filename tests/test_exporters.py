"""The built-in exporters: JSON Lines (the embedded default), console, memory."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

import signalkit as sk
from signalkit.events import read_jsonl

SECRET = "s" * 32


@pytest.fixture
def events(client: sk.Client, exposure: sk.Exposure) -> list[sk.Event]:
    """One exposure and one event of every signal kind."""
    recorded = [
        exposure.event,
        client.action(exposure, "accepted"),
        client.correction(exposure, "draft", "final"),
        client.toggle(exposure, "expanded", element="why"),
        client.outcome(exposure, "purchase", value=9.5, success=True),
        client.feedback(exposure, rating=4, scale=(1, 5), comment="good"),
    ]
    assert all(e is not None for e in recorded)
    return [e for e in recorded if e is not None]


def test_every_exporter_implements_the_exporter_protocol(tmp_path: Path) -> None:
    for exporter in (
        sk.JsonlExporter(tmp_path / "e.jsonl"),
        sk.ConsoleExporter(io.StringIO()),
        sk.MemoryExporter(),
    ):
        assert isinstance(exporter, sk.Exporter)


# -- JSON Lines ----------------------------------------------------------------------------------


def test_jsonl_writes_one_event_per_line_as_its_json(
    tmp_path: Path, events: list[sk.Event]
) -> None:
    path = tmp_path / "deep" / "dir" / "events.jsonl"
    exporter = sk.JsonlExporter(path)
    assert exporter.export(events) is sk.ExportResult.SUCCESS
    exporter.shutdown()
    lines = path.read_bytes().splitlines()
    assert lines == [e.to_json() for e in events]
    assert list(read_jsonl(lines)) == events


def test_jsonl_appends_to_an_existing_file(tmp_path: Path, events: list[sk.Event]) -> None:
    path = tmp_path / "events.jsonl"
    first = sk.JsonlExporter(path)
    first.export(events[:2])
    first.shutdown()
    second = sk.JsonlExporter(path)
    second.export(events[2:])
    second.shutdown()
    assert list(read_jsonl(path.read_bytes().splitlines())) == events


def test_jsonl_rotates_by_size_keeping_at_most_backups_files(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    client = sk.Client(
        "svc",
        exporters=[sk.JsonlExporter(path, max_bytes=3_000, backups=2)],
        secret=SECRET,
        batch_size=1,
    )
    try:
        with client.exposure("s") as exp:
            pass
        for _ in range(40):
            client.action(exp, "clicked")
        assert client.flush(5)
    finally:
        client.shutdown(timeout=2)
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert all(f.stat().st_size <= 3_000 for f in files)
    oldest_first = [tmp_path / "events.jsonl.2", tmp_path / "events.jsonl.1", path]
    seqs = [e.seq for f in oldest_first for e in read_jsonl(f.read_bytes().splitlines())]
    assert seqs == list(range(seqs[0], 42))  # contiguous, ending with the newest


def test_jsonl_with_no_backups_starts_over(tmp_path: Path, events: list[sk.Event]) -> None:
    path = tmp_path / "events.jsonl"
    exporter = sk.JsonlExporter(path, max_bytes=len(events[0].to_json()) + 1, backups=0)
    for event in events[:3]:
        assert exporter.export([event]) is sk.ExportResult.SUCCESS
    exporter.shutdown()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]
    assert list(read_jsonl(path.read_bytes().splitlines())) == [events[2]]


def test_jsonl_asks_for_a_retry_when_it_cannot_write(
    tmp_path: Path, events: list[sk.Event]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    exporter = sk.JsonlExporter(blocker / "events.jsonl")
    assert exporter.export(events) is sk.ExportResult.RETRY


@pytest.mark.parametrize(("option", "value"), [("max_bytes", 0), ("backups", -1)])
def test_jsonl_rejects_bad_options_naming_them(tmp_path: Path, option: str, value: int) -> None:
    with pytest.raises(sk.ConfigError, match=option):
        sk.JsonlExporter(tmp_path / "e.jsonl", **{option: value})


def test_jsonl_repr_names_its_path(tmp_path: Path) -> None:
    assert "e.jsonl" in repr(sk.JsonlExporter(tmp_path / "e.jsonl"))


# -- console -------------------------------------------------------------------------------------


def test_console_writes_one_readable_line_per_event(events: list[sk.Event]) -> None:
    out = io.StringIO()
    assert sk.ConsoleExporter(out).export(events) is sk.ExportResult.SUCCESS
    lines = out.getvalue().splitlines()
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        assert event.kind in line
        assert event.exposure_id[:8] in line
        assert event.score is not None
        assert f"s={event.score.strength:.2f}" in line


def test_console_readable_lines_say_what_happened(events: list[sk.Event]) -> None:
    out = io.StringIO()
    sk.ConsoleExporter(out).export(events)
    text = out.getvalue()
    for fragment in ("reply-draft", "accepted", "expanded why", "purchase", "rating 4"):
        assert fragment in text


def test_console_json_mode_writes_the_events_json(events: list[sk.Event]) -> None:
    out = io.StringIO()
    sk.ConsoleExporter(out, json=True).export(events)
    lines = out.getvalue().splitlines()
    assert [orjson.loads(line) for line in lines] == [orjson.loads(e.to_json()) for e in events]


def test_console_writes_to_stderr_by_default(
    events: list[sk.Event], capsys: pytest.CaptureFixture[str]
) -> None:
    sk.ConsoleExporter().export(events[:1])
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "exposure" in captured.err


# -- memory --------------------------------------------------------------------------------------


@pytest.fixture
def memory_client() -> Iterator[tuple[sk.Client, sk.MemoryExporter]]:
    memory = sk.MemoryExporter()
    client = sk.Client("svc", exporters=[memory], secret=SECRET)
    yield client, memory
    client.shutdown(timeout=2)


def test_memory_keeps_events_in_export_order_and_counts_batches(
    memory_client: tuple[sk.Client, sk.MemoryExporter],
) -> None:
    client, memory = memory_client
    with client.exposure("s") as exp:
        pass
    client.flush(2)
    client.action(exp, "accepted")
    client.flush(2)
    assert [e.kind for e in memory.events] == ["exposure", "action"]
    assert memory.batches == 2


def test_memory_events_is_a_copy_and_clear_empties_it(
    memory_client: tuple[sk.Client, sk.MemoryExporter],
) -> None:
    client, memory = memory_client
    with client.exposure("s"):
        pass
    client.flush(2)
    snapshot = memory.events
    snapshot.clear()
    assert len(memory.events) == 1
    memory.clear()
    assert memory.events == []


def test_memory_is_shut_down_with_its_client(
    memory_client: tuple[sk.Client, sk.MemoryExporter],
) -> None:
    client, memory = memory_client
    assert not memory.is_shutdown
    client.shutdown(timeout=2)
    assert memory.is_shutdown
