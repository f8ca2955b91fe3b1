"""``signalkit report``: numbers checked against a small dataset worked out by hand.

The dataset is recorded through the real client (backfilled with ``at=``) into a real JSONL
file; the expected values below are written from the counting rules in docs/report.md, not
computed by the report's SQL. ``tests/test_clickhouse.py`` runs the same dataset through
ClickHouse and asserts the same results.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import statistics
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import signalkit as sk
from signalkit.analytics import build_report, load_events
from signalkit.analytics._render import render_html, render_table
from signalkit.analytics._stats import mean_ci, newcombe_diff_ci, wilson_ci
from signalkit.cli import main
from signalkit.events import Event, read_jsonl

pytest.importorskip("duckdb")

T0 = datetime(2026, 1, 5, tzinfo=UTC)
S, H, D = timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)
SECRET = "k" * 32


def record_dataset(path: Path) -> list[Event]:
    """Exposures of two versions (variants a/b), their signals, all backfilled.

    v1 (baseline), all variant a except e5 (variant b):
      e1 T0      accepted +2 s; outcome ok value 10 at +1 h
      e2 T0+1h   correction at +5 s
      e3 T0+2h   nothing (ignored)
      e4 T0+3h   clicked +30 s (its line is written twice: a duplicate)
      e5 T0+4h   expanded +1 s; accepted +25 h (outside the 24 h window)
    v2, all variant a:
      f1 T0      accepted +1 s and again +3 s
      f2 T0+1h   dismissed +2 s
      f3 T0+2h   clicked +4 s; outcome failed at +2 h; feedback -1 at +10 s
      f4 T0+10d  accepted +6 s (outside --until T0+5d)
    plus a signal whose exposure is not in the file, and malformed lines.
    """
    client = sk.Client("shop", exporters=[sk.JsonlExporter(path)], secret=SECRET)

    def expose(version: str, variant: str, at: datetime) -> sk.Exposure:
        with client.exposure(
            "search",
            model="ranker",
            model_version=version,
            model_variant=variant,
            at=at,
            attributes={"region": "eu" if version == "v1" else "us"},
        ) as exp:
            pass
        return exp

    e1 = expose("v1", "a", T0)
    client.action(e1, "accepted", at=T0 + 2 * S)
    client.outcome(e1, "purchase", value=10.0, success=True, at=T0 + H)
    e2 = expose("v1", "a", T0 + H)
    client.correction(e2, "Hello there friend", "Hello friend", at=T0 + H + 5 * S)
    expose("v1", "a", T0 + 2 * H)
    e4 = expose("v1", "a", T0 + 3 * H)
    client.action(e4, "clicked", at=T0 + 3 * H + 30 * S)
    e5 = expose("v1", "b", T0 + 4 * H)
    client.toggle(e5, "expanded", at=T0 + 4 * H + S)
    client.action(e5, "accepted", at=T0 + 4 * H + 25 * H)

    f1 = expose("v2", "a", T0)
    client.action(f1, "accepted", at=T0 + S)
    client.action(f1, "accepted", at=T0 + 3 * S)
    f2 = expose("v2", "a", T0 + H)
    client.action(f2, "dismissed", at=T0 + H + 2 * S)
    f3 = expose("v2", "a", T0 + 2 * H)
    client.action(f3, "clicked", at=T0 + 2 * H + 4 * S)
    client.outcome(f3, "purchase", success=False, at=T0 + 4 * H)
    client.feedback(f3, -1, at=T0 + 2 * H + 10 * S)
    f4 = expose("v2", "a", T0 + 10 * D)
    client.action(f4, "accepted", at=T0 + 10 * D + 6 * S)
    assert client.flush(10)
    client.shutdown(5)

    lines = path.read_bytes().splitlines()
    events = [sk.events.parse_event(line) for line in lines]
    clicked_e4 = next(
        i
        for i, e in enumerate(events)
        if e.kind == "action" and e.exposure_id == e4.id and e.action == "clicked"
    )
    orphan = json.loads(lines[clicked_e4])
    orphan["id"], orphan["exposure_id"] = "orphan-1", "no-such-exposure"
    extra = [
        lines[clicked_e4],  # line count + 1: the duplicate
        b"this is not json",
        b'{"id": "x", "kind": "action"',
        b"",
        b'{"kind": "action", "exposure_id": "e"}',
        json.dumps(orphan).encode(),
    ]
    path.write_bytes(b"\n".join(lines + extra) + b"\n")
    return events


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    path = tmp_path_factory.mktemp("report") / "events.jsonl"
    return path, record_dataset(path)


def strengths(events: list[Event], exposure_ids: set[str], window: timedelta) -> list[float]:
    """Strength of every signal of these exposures within the window (outcomes: 7 days)."""
    shown = {e.exposure_id: e.ts for e in events if e.kind == "exposure"}
    out = []
    for e in events:
        if e.kind == "exposure" or e.exposure_id not in exposure_ids:
            continue
        limit = timedelta(days=7) if e.kind == "outcome" else window
        if e.ts - shown[e.exposure_id] <= limit:
            assert e.score is not None
            out.append(e.score.strength)
    return out


def exposure_ids(events: list[Event], version: str, before: datetime | None = None) -> set[str]:
    return {
        e.id
        for e in events
        if e.kind == "exposure" and e.model.version == version and (before is None or e.ts < before)
    }


def test_the_report_counts_each_rule_as_written(dataset: tuple[Path, list[Event]]) -> None:
    path, events = dataset
    report = build_report(path)
    assert [g.label for g in report.groups] == ["v1", "v2"]
    v1, v2 = report.group("v1"), report.group("v2")
    assert v1.is_baseline
    assert report.baseline == "v1"

    # v1: 5 exposures; acted e1 (accepted) and e4 (clicked); e5's accept came after 24 h
    assert v1.exposures == 5
    assert v1.metrics["act_on_rate"].count == 2
    assert v1.metrics["act_on_rate"].value == pytest.approx(2 / 5)
    assert v1.metrics["act_on_rate"].ci == pytest.approx(wilson_ci(2, 5))
    assert v1.metrics["correction_rate"].count == 1  # e2
    assert v1.metrics["expand_rate"].count == 1  # e5
    assert v1.metrics["outcome_rate"].count == 1  # e1
    assert v1.metrics["ignored_rate"].count == 1  # e3 (e5 was expanded: that is interaction)
    # time to first act-on action: e1 2 s, e4 30 s -> median 16 s, p90 2 + 0.9 * 28 = 27.2 s
    assert v1.metrics["time_to_action_p50_ms"].value == pytest.approx(16_000)
    assert v1.metrics["time_to_action_p90_ms"].value == pytest.approx(27_200)
    assert v1.metrics["time_to_action_p50_ms"].n == 2
    # outcome value per exposure: 10, 0, 0, 0, 0
    value = v1.metrics["outcome_value_mean"]
    assert value.value == pytest.approx(2.0)
    assert value.ci == pytest.approx(mean_ci(10.0, 100.0, 5)[1])  # type: ignore[index]
    half = 1.959963984540054 * statistics.stdev([10, 0, 0, 0, 0]) / math.sqrt(5)
    assert value.ci == pytest.approx((2 - half, 2 + half))
    correction = next(e for e in events if e.kind == "correction")
    assert v1.metrics["similarity_median"].value == pytest.approx(correction.similarity)

    # v2 (before T0+10d it had 3 exposures; f4 is included without --until)
    assert v2.exposures == 4
    assert v2.metrics["act_on_rate"].count == 3  # f1, f3, f4 (f2 was dismissed)
    assert v2.metrics["outcome_rate"].count == 0  # f3's outcome failed
    assert v2.metrics["ignored_rate"].count == 0
    assert v2.metrics["outcome_value_mean"].value is None  # no outcome carried a value
    # first act-on: f1 1 s (not 3 s), f3 4 s, f4 6 s -> median 4 s; p90 = 4 + 0.8 * 2 = 5.6 s
    assert v2.metrics["time_to_action_p50_ms"].value == pytest.approx(4_000)
    assert v2.metrics["time_to_action_p90_ms"].value == pytest.approx(5_600)
    # bins <0.5 s, <1 s, <2 s, <5 s, <10 s: 1 s, 4 s and 6 s fall in the 3rd, 4th and 5th
    assert v2.time_to_action_histogram[:5] == [0, 0, 1, 1, 1]

    for version, group in (("v1", v1), ("v2", v2)):
        s = strengths(events, exposure_ids(events, version), timedelta(hours=24))
        assert group.metrics["strength_mean"].n == len(s)
        assert group.metrics["strength_mean"].value == pytest.approx(statistics.fmean(s))
        assert sum(group.strength_histogram) == len(s)

    # the difference from the baseline, by Newcombe's interval
    cmp = v2.metrics["act_on_rate"].vs_baseline
    assert cmp is not None
    assert cmp.diff == pytest.approx(3 / 4 - 2 / 5)
    assert cmp.ci == pytest.approx(newcombe_diff_ci(3, 4, 2, 5))
    assert cmp.significant is False  # 9 exposures prove nothing

    assert v1.funnel == {"exposures": 5, "interacted": 4, "acted_on": 2, "outcome": 1}


def test_duplicates_malformed_lines_and_orphans_are_accounted_for(
    dataset: tuple[Path, list[Event]],
) -> None:
    path, events = dataset
    report = build_report(path)
    source = report.source
    n = len(events)
    assert source["events"] == n + 1  # the orphan is a valid event
    assert source["duplicates"] == 1
    assert source["malformed"]["count"] == 3
    assert source["malformed"]["first"] == [
        {"file": str(path), "line": n + 2, "reason": "invalid JSON"},
        {"file": str(path), "line": n + 3, "reason": "invalid JSON"},
        {"file": str(path), "line": n + 5, "reason": "missing id"},  # n + 4 is blank
    ]
    assert report.orphan_signals == 1
    # the duplicated click is counted once: e4 is acted on once, and its strength once
    v1 = report.group("v1")
    s = strengths(events, exposure_ids(events, "v1"), timedelta(hours=24))
    assert v1.metrics["strength_mean"].n == len(s)


def test_since_and_until_select_exposures_by_the_time_they_were_shown(
    dataset: tuple[Path, list[Event]],
) -> None:
    path, _ = dataset
    report = build_report(path, since=T0 + 30 * 60 * S, until=T0 + 5 * D)
    v1, v2 = report.group("v1"), report.group("v2")
    assert v1.exposures == 4  # e2..e5
    assert v1.metrics["act_on_rate"].count == 1  # e4
    assert v2.exposures == 2  # f2, f3 (f1 before, f4 after)
    assert v2.metrics["act_on_rate"].count == 1
    # signals follow their exposure even when they come after --until
    late = build_report(
        path, since=T0 + 4 * H, until=T0 + 4 * H + S, action_window=timedelta(days=2)
    )
    assert late.group("v1").metrics["act_on_rate"].count == 1  # e5's accept at +25 h


def test_windows_and_act_on_actions_are_parameters(dataset: tuple[Path, list[Event]]) -> None:
    path, _ = dataset
    short = build_report(path, action_window=timedelta(seconds=10))
    assert short.group("v1").metrics["act_on_rate"].count == 1  # e4's click at 30 s is late
    dismissals = build_report(path, act_on={"dismissed"})
    assert dismissals.group("v2").metrics["act_on_rate"].count == 1


def test_several_by_keys_make_one_group_per_combination(
    dataset: tuple[Path, list[Event]],
) -> None:
    path, _ = dataset
    report = build_report(path, by=["model.version", "model.variant"], baseline="v1 / a")
    assert [g.label for g in report.groups] == ["v1 / a", "v1 / b", "v2 / a"]
    assert report.group("v1 / b").exposures == 1
    assert report.group("v1 / b").key == {"model.version": "v1", "model.variant": "b"}
    assert report.group("v1 / a").metrics["act_on_rate"].count == 2
    by_attribute = build_report(path, by=["attributes.region"])
    assert [g.label for g in by_attribute.groups] == ["eu", "us"]
    with pytest.raises(ValueError, match="unknown key"):
        build_report(path, by=["model.colour"])
    with pytest.raises(ValueError, match="no group"):
        build_report(path, baseline="v9")


def test_a_significant_difference_is_flagged() -> None:
    # 60/100 vs 30/100: Newcombe's interval excludes 0
    lo, hi = newcombe_diff_ci(60, 100, 30, 100)  # type: ignore[misc]
    assert 0 < lo < 0.3 < hi
    # the Wilson interval matches its textbook value for 2 of 5 (Newcombe 1998, table I style)
    lo2, hi2 = wilson_ci(2, 5)  # type: ignore[misc]
    assert (round(lo2, 4), round(hi2, 4)) == (0.1176, 0.7693)


def test_the_json_is_stable_and_documented(dataset: tuple[Path, list[Event]]) -> None:
    path, _ = dataset
    data = build_report(path).to_dict()
    assert data["schema"] == "signalkit.report/1"
    assert set(data) == {
        "schema", "generated_at", "source", "params", "by", "baseline", "orphan_signals",
        "histogram_edges", "groups",
    }  # fmt: skip
    group = data["groups"][1]
    assert set(group) == {
        "key", "label", "is_baseline", "exposures", "funnel", "metrics", "histograms"
    }  # fmt: skip
    assert list(group["metrics"]) == [
        "act_on_rate", "correction_rate", "expand_rate", "ignored_rate", "outcome_rate",
        "time_to_action_p50_ms", "time_to_action_p90_ms", "similarity_median",
        "outcome_value_mean", "strength_mean", "strength_polarity_mean",
    ]  # fmt: skip
    assert set(data["source"]) == {
        "engine", "location", "files", "lines", "events", "duplicates", "malformed"
    }  # fmt: skip
    assert set(data["source"]["malformed"]) == {"count", "first"}
    assert set(data["source"]["malformed"]["first"][0]) == {"file", "line", "reason"}
    assert set(data["params"]) == {
        "since", "until", "surfaces", "models", "act_on", "action_window_ms",
        "outcome_window_ms", "confidence",
    }  # fmt: skip
    assert set(data["histogram_edges"]) == {"time_to_action_ms", "strength"}
    assert list(group["funnel"]) == ["exposures", "interacted", "acted_on", "outcome"]
    assert set(group["histograms"]) == {"time_to_action", "strength"}
    assert len(group["histograms"]["time_to_action"]) == (
        len(data["histogram_edges"]["time_to_action_ms"]) + 1
    )
    assert len(group["histograms"]["strength"]) == len(data["histogram_edges"]["strength"]) + 1
    for name, metric in group["metrics"].items():
        rate = name.endswith("_rate")
        assert set(metric) == {"value", "n", "ci", "vs_baseline"} | ({"count"} if rate else set())
        if metric["vs_baseline"] is not None:
            assert set(metric["vs_baseline"]) == {"diff", "ci", "significant"}
    json.dumps(data)  # JSON-ready

    # the documented example has the same shape, and every metric is described
    docs = (Path(__file__).parents[1] / "docs" / "report.md").read_text()
    for name in group["metrics"]:
        assert f"`{name}`" in docs, name
    example = json.loads(docs.split("```json\n", 1)[1].split("```", 1)[0])
    assert set(example) == set(data)
    assert example["schema"] == data["schema"]
    assert set(example["source"]) == set(data["source"])
    assert set(example["params"]) == set(data["params"])
    shown = example["groups"][1]
    assert set(shown) == set(group)
    assert set(shown["funnel"]) == set(group["funnel"])
    for name, metric in shown["metrics"].items():
        if name != "...":
            assert set(metric) == set(group["metrics"][name]), name
            assert set(metric["vs_baseline"]) == {"diff", "ci", "significant"}


def test_backfilled_history_and_a_directory_of_rotated_files(tmp_path: Path) -> None:
    client = sk.Client(
        "old",
        exporters=[sk.JsonlExporter(tmp_path / "events.jsonl", max_bytes=4000, backups=20)],
        secret=SECRET,
    )
    start = datetime(2019, 3, 1, tzinfo=UTC)
    for i in range(40):
        with client.exposure("s", model_version="2019", at=start + i * H) as exp:
            pass
        if i % 4 == 0:
            client.action(exp, "accepted", at=start + i * H + 3 * S)
        if i % 8 == 7:
            client.flush(10)  # one batch a flush; the file rotates between batches
    client.shutdown(5)
    assert len(list(tmp_path.glob("events.jsonl.*"))) >= 2  # it rotated
    report = build_report(tmp_path)
    g = report.group("2019")
    assert g.exposures == 40
    assert g.metrics["act_on_rate"].count == 10
    assert g.metrics["time_to_action_p50_ms"].value == pytest.approx(3000)
    assert build_report(tmp_path, since=start + 20 * H).group("2019").exposures == 20


def test_nothing_in_a_file_makes_loading_raise(tmp_path: Path) -> None:
    path = tmp_path / "junk.jsonl"
    path.write_bytes(
        b'{"a": 1}\n\xff\xfe\n[1, 2]\n"text"\n{"id": 5}\n'
        b'{"id":"i","kind":"action","exposure_id":"x","ts":"not a time"}\n'
        b'{"id":"j","kind":"nope","exposure_id":"x","ts":"2026-01-01T00:00:00Z"}\r\n'
        + b'{"id":"k","kind":"exposure","exposure_id":"k","ts":"2026-01-01T00:00:00Z",'
        b'"surface":"s","model":{"version":"v"},"score":{"strength":"high"}}\n'
    )
    with load_events(path) as loaded:
        assert [(m.line, m.reason) for m in loaded.malformed] == [
            (1, "missing id"),
            (2, "invalid UTF-8"),
            (3, "not a JSON object"),
            (4, "not a JSON object"),
            (5, "missing kind"),
            (6, "missing or invalid ts"),
            (7, "unknown kind nope"),
        ]
        assert loaded.events == 1
    report = build_report(path)
    assert report.group("v").exposures == 1


def _exposure_line(n: int) -> bytes:
    eid = f"0190a000-0000-7000-8000-{n:012x}"
    return (
        f'{{"id":"{eid}","kind":"exposure","exposure_id":"{eid}",'
        f'"ts":"2026-01-01T00:00:00Z","surface":"s","model":{{"version":"v"}}}}\n'
    ).encode()


def test_an_overlong_line_is_reported_and_the_rest_of_the_file_is_read(tmp_path: Path) -> None:
    from signalkit.analytics._source import MAX_LINE_BYTES

    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        f.write(_exposure_line(1) + b"\n")  # line 2 is blank
        f.write(b'{"id":"x","pad":"' + b"a" * (3 * MAX_LINE_BYTES) + b'"}\n')  # line 3
        f.write(b"not json\n" + _exposure_line(2))  # lines 4 and 5
    with load_events(path) as loaded:
        assert [(m.line, m.reason) for m in loaded.malformed] == [
            (3, f"line longer than {MAX_LINE_BYTES >> 20} MiB"),
            (4, "invalid JSON"),
        ]
        assert loaded.events == 2
        assert loaded.files == [str(path)]  # the file named, not the copy read
        rows = loaded.connection.sql("SELECT line FROM events ORDER BY line").fetchall()
        assert rows == [(1,), (5,)]


def test_a_truncated_last_line_and_a_huge_one_are_counted_with_their_numbers(
    tmp_path: Path,
) -> None:
    """A writer killed mid-line leaves half an event with no newline; the lines before count."""
    path = tmp_path / "crashed.jsonl"
    whole = _exposure_line(1)
    pad = b"x" * (4 << 20)  # a 4 MiB attribute: big, but under the 16 MiB line limit
    huge = _exposure_line(4).replace(b'"surface"', b'"attributes":{"pad":"' + pad + b'"},"surface"')
    path.write_bytes(
        whole + b"\n   \n" + huge + b"[]\n" + _exposure_line(2) + _exposure_line(3)[:57]
    )
    with load_events(path) as loaded:
        assert [(m.line, m.reason) for m in loaded.malformed] == [
            (5, "not a JSON object"),
            (7, "invalid JSON"),  # the truncated last line
        ]
        assert (loaded.events, loaded.lines) == (3, 5)  # blank lines 2 and 3 are not counted
        rows = loaded.connection.sql("SELECT line FROM events ORDER BY line").fetchall()
        assert rows == [(1,), (4,), (6,)]
    # a complete last line without its newline is an event like any other
    path.write_bytes(whole + _exposure_line(2).rstrip(b"\n"))
    with load_events(path) as loaded:
        assert (loaded.events, loaded.malformed_count) == (2, 0)


def test_lines_are_numbered_per_file_and_the_first_copy_wins(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl.1").write_bytes(_exposure_line(1) + b"oops\n" + _exposure_line(2))
    (tmp_path / "events.jsonl").write_bytes(
        b"\n\n" + _exposure_line(2) + b"{}\n" + _exposure_line(3)
    )
    with load_events(tmp_path) as loaded:
        assert [(m.file.rsplit("/", 1)[-1], m.line, m.reason) for m in loaded.malformed] == [
            ("events.jsonl.1", 2, "invalid JSON"),
            ("events.jsonl", 4, "missing id"),
        ]
        assert (loaded.events, loaded.duplicates) == (3, 1)
        rows = loaded.connection.sql(
            "SELECT file_idx, line, right(id, 1) FROM events ORDER BY file_idx, line"
        ).fetchall()
        assert rows == [(0, 1, "1"), (0, 3, "2"), (1, 5, "3")]  # id 2 kept from the older file


def test_the_temporary_database_is_removed_when_closed(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(_exposure_line(1))
    loaded = load_events(path)
    assert loaded.workdir is not None
    assert Path(loaded.workdir).is_dir()
    loaded.close()
    assert not Path(loaded.workdir).exists()


def test_a_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    err = io.StringIO()
    from signalkit.cli.report import run

    parser_args = _args(["report", str(tmp_path / "nothing.jsonl")])
    assert run(parser_args, out=io.StringIO(), err=err) == 2
    assert "no JSONL events at" in err.getvalue()


def _args(argv: list[str]) -> object:
    import argparse

    from signalkit.cli.report import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_the_cli_prints_table_json_and_html(
    dataset: tuple[Path, list[Event]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = dataset
    assert main(["report", str(path), "--by", "model.version", "--until", "2026-01-10"]) == 0
    text = capsys.readouterr().out
    assert "act-on rate" in text
    assert "  v1 " in text
    assert "skipped 3 malformed lines" in text
    assert main(["report", str(path), "--format", "json", "--window", "10s"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"]["action_window_ms"] == 10_000
    assert data["groups"][0]["metrics"]["act_on_rate"]["count"] == 1
    out = tmp_path / "r.html"
    assert main(["report", str(path), "--format", "html", "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!doctype html>")
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page


def test_the_command_runs_as_a_subprocess(dataset: tuple[Path, list[Event]]) -> None:
    path, _ = dataset
    proc = subprocess.run(
        [sys.executable, "-m", "signalkit.cli", "report", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["groups"][0]["label"] == "v1"


def test_without_duckdb_the_command_says_how_to_install_it(
    dataset: tuple[Path, list[Event]], tmp_path: Path
) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "duckdb.py").write_text("raise ImportError('no duckdb here')\n")
    code = (
        f"import sys; sys.path.insert(0, {str(blocker)!r}); from signalkit.cli import main; "
        f"sys.exit(main(['report', {str(dataset[0])!r}]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 3
    assert "pip install 'signalkit[report]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_table_and_page_show_every_group(dataset: tuple[Path, list[Event]]) -> None:
    path, _ = dataset
    report = build_report(path)
    table = render_table(report)
    assert "v1" in table
    assert "v2" in table
    page = render_html(report)
    for label in ("Act-on rate", "Time to action", "Signal strength", "Outcome funnel"):
        assert label in page
    assert page.count("<svg") == 4


CHROMIUM = shutil.which("chromium")


def _chromium(page: Path, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """Open ``page`` in headless Chromium: (the DOM it built, its log with console messages)."""
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return proc.stdout, proc.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_page_renders_its_charts_in_chromium_without_fetching_anything(
    dataset: tuple[Path, list[Event]], tmp_path: Path
) -> None:
    from html.parser import HTMLParser

    path, _ = dataset
    page = tmp_path / "report.html"
    assert main(["report", str(path), "--format", "html", "-o", str(page)]) == 0
    dom, log = _chromium(page, tmp_path, "--dump-dom")

    class Figures(HTMLParser):
        """Per <figure>: its caption and the bars (rects of positive size) in its SVG."""

        def __init__(self) -> None:
            super().__init__()
            self.figures: list[dict[str, object]] = []
            self.in_caption = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "figure":
                self.figures.append({"caption": "", "svg": 0, "bars": 0})
            elif tag == "figcaption":
                self.in_caption = True
            elif tag == "svg" and self.figures:
                self.figures[-1]["svg"] = 1
            elif (
                tag == "rect"
                and self.figures
                and float(a.get("width") or 0) > 0
                and float(a.get("height") or 0) > 0
            ):
                self.figures[-1]["bars"] = int(str(self.figures[-1]["bars"])) + 1

        def handle_endtag(self, tag: str) -> None:
            self.in_caption = self.in_caption and tag != "figcaption"

        def handle_data(self, data: str) -> None:
            if self.in_caption:
                self.figures[-1]["caption"] = str(self.figures[-1]["caption"]) + data

    parsed = Figures()
    parsed.feed(dom)
    report = build_report(path)
    acted = [g.funnel["acted_on"] for g in report.groups]
    assert acted == [2, 3]  # the hand-worked dataset: e1, e4 / f1, f3, f4
    charts = {str(f["caption"]).split(" (")[0]: (f["svg"], f["bars"]) for f in parsed.figures}
    assert charts == {
        "Act-on rate": (1, 2),  # one bar per version
        # a bar for each non-empty bin of each version
        "Time to action": (
            1,
            sum(1 for g in report.groups for c in g.time_to_action_histogram if c),
        ),
        "Signal strength": (1, sum(1 for g in report.groups for c in g.strength_histogram if c)),
        "Outcome funnel": (1, sum(1 for g in report.groups for v in g.funnel.values() if v)),
    }
    assert charts["Time to action"][1] >= 4
    assert "Content Security Policy" not in log  # nothing was fetched, or even tried
    shot = tmp_path / "shot.png"
    _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the check above can fail: the same page with a remote image and stylesheet is refused
    tainted = tmp_path / "tainted.html"
    tainted.write_text(
        page.read_text().replace(
            "<body>",
            '<body><img src="http://example.invalid/a.png">'
            '<link rel="stylesheet" href="https://example.invalid/b.css">',
        )
    )
    _, log = _chromium(tainted, tmp_path, "--dump-dom")
    assert log.count("violates the following Content Security Policy") == 2


def test_the_demo_points_at_the_report(tmp_path: Path) -> None:
    from signalkit.cli.demo import run_demo

    out = io.StringIO()
    run_demo(tmp_path / "d.jsonl", users=10, seed=1, out=out, err=io.StringIO())
    assert "signalkit report" in out.getvalue()
    assert "--format html" in out.getvalue()
    report = build_report(tmp_path / "d.jsonl", surfaces=["reply-draft"])
    assert {g.label for g in report.groups} <= {"2026-10-01", "2026-11-01"}


def test_the_readme_shows_the_table_the_report_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    command = "uv run signalkit report .signalkit/demo.jsonl --surface reply-draft"
    assert f"```sh\n{command}\n```\n\n```text\n" in readme
    shown = readme.split(f"{command}\n```\n\n```text\n", 1)[1].split("\n```", 1)[0]
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(command.split()[3:]) == 0
    assert capsys.readouterr().out.rstrip("\n") == shown


def test_read_jsonl_agrees_with_the_loader_on_a_clean_file(
    dataset: tuple[Path, list[Event]], tmp_path: Path
) -> None:
    _, events = dataset
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    with clean.open("rb") as f:
        parsed = list(read_jsonl(f))
    with load_events(clean) as loaded:
        rows = loaded.connection.execute(
            "SELECT id, kind, ts_ms, strength FROM events ORDER BY line"
        ).fetchall()
    assert [(e.id, e.kind) for e in parsed] == [(r[0], r[1]) for r in rows]
    assert [int(e.ts.timestamp() * 1000) for e in parsed] == [r[2] for r in rows]
