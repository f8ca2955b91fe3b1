"""The ``signalkit`` command: demo, tail and schema, run as a user runs them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

import signalkit as sk
from signalkit.cli import main
from signalkit.cli.demo import run_demo
from signalkit.cli.tail import tail
from signalkit.events import read_jsonl

REPO = Path(__file__).resolve().parents[1]


def test_demo_records_a_week_of_signals_and_prints_a_summary_per_model_version(
    tmp_path: Path,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "demo.jsonl"
    result = run_demo(path, users=40, seed=3, out=out, err=err)
    text = out.getvalue()
    assert "2026-10-01" in text
    assert "2026-11-01" in text
    for column in ("exposures", "act-on rate", "correction rate", "median time-to-action"):
        assert column in text
    assert "dropped 0, rejected 0" in text
    assert "100.0%" in err.getvalue()  # the progress bar reached the end
    with path.open("rb") as f:
        events = list(read_jsonl(f))
    assert len(events) == result.events
    kinds = {e.kind for e in events}
    assert kinds == {"exposure", "action", "correction", "toggle", "outcome", "feedback"}
    # signals were recorded from tokens by a second client: time-to-action was computed
    relayed = [e for e in events if e.service == "support-web" and e.kind == "action"]
    assert relayed
    assert all(e.time_to_action_ms is not None for e in relayed)
    assert all(e.subject.user_id for e in events)
    # seq has no gaps per producer
    by_producer: dict[str, list[int]] = {}
    for e in events:
        by_producer.setdefault(e.producer_id, []).append(e.seq)
    for seqs in by_producer.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


def test_demo_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    a, b = io.StringIO(), io.StringIO()
    run_demo(tmp_path / "a.jsonl", users=15, seed=11, out=a, err=io.StringIO())
    run_demo(tmp_path / "b.jsonl", users=15, seed=11, out=b, err=io.StringIO())
    table = [line for line in a.getvalue().splitlines() if line.startswith("  2026-")]
    assert table
    assert table == [line for line in b.getvalue().splitlines() if line.startswith("  2026-")]


def test_the_demo_command_runs_in_a_fresh_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "signalkit.cli", "demo", "--users", "20", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".signalkit" / "demo.jsonl").stat().st_size > 0
    assert "median time-to-action" in proc.stdout


def test_schema_prints_the_json_schema_of_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {"exposure", "action", "correction", "toggle", "outcome", "feedback"}
    assert schema["$schema"].startswith("https://json-schema.org/")


def _write_events(path: Path) -> list[sk.Event]:
    client = sk.Client("tail", exporters=[sk.JsonlExporter(path)], secret="t" * 32)
    with client.exposure("search", model="ranker", model_version="v7", user_id="u1") as exp:
        exp.items = ["a", "b"]
    events = [
        exp,
        client.action(exp, "clicked", item_id="a"),
        client.correction(exp, "hello world", "hello there world"),
        client.toggle(exp, "expanded", element="why"),
        client.outcome(exp, "purchase", value=12.5, success=True),
        client.feedback(exp, 5, scale=(1, 5), comment="great"),
    ]
    client.shutdown(5)
    return [e for e in events if isinstance(e, sk.ExposureEvent | sk.ActionEvent)]


def test_tail_prints_the_last_events_readably(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path)
    assert tail(path, lines=3) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "expanded why" in lines[0]
    assert "purchase value=12.5 success" in lines[1]
    assert "rating 5" in lines[2]
    assert "user u1" in lines[2]


def test_tail_reports_malformed_lines_with_their_number_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path)
    with path.open("ab") as f:
        f.write(b"{not json\n")
    assert main(["tail", str(path), "-n", "100"]) == 0
    captured = capsys.readouterr()
    assert "line 7: malformed" in captured.err
    assert len(captured.out.splitlines()) == 6


def test_tail_filters_by_kind_and_prints_raw_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path)
    assert tail(path, lines=100, kinds={"action"}, raw=True) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert orjson.loads(lines[0])["action"] == "clicked"


def test_tail_follows_new_events_and_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    _write_events(path)

    def append_later() -> None:
        # a writer that rotates the file by size: every event is over 600 bytes
        exporter = sk.JsonlExporter(path, max_bytes=600)
        client = sk.Client("later", exporters=[exporter], secret="t" * 32)
        for surface in ("late-arrival", "after-rotation", "third-file"):
            time.sleep(0.3)
            with client.exposure(surface):
                pass
            client.flush(5)
        client.shutdown(5)

    writer = threading.Thread(target=append_later)
    writer.start()
    tail(path, lines=0, follow=True, poll_s=0.05, max_polls=40)
    writer.join()
    out = capsys.readouterr().out
    assert "late-arrival" in out
    assert "after-rotation" in out
    assert "third-file" in out
    assert path.with_name("events.jsonl.2").exists()  # it really rotated twice


def test_tail_of_a_missing_file_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", str(tmp_path / "nope.jsonl")]) == 1
    assert "signalkit demo" in capsys.readouterr().err


def test_the_quickstart_example_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("SIGNALKIT_DIR", None)  # the embedded default, relative to the working directory
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "correction: strength" in proc.stdout
    lines = (tmp_path / ".signalkit" / "events.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["kind"] for x in lines] == [
        "exposure",
        "toggle",
        "toggle",
        "correction",
        "action",
        "outcome",
        "feedback",
    ]
