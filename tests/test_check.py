"""``signalkit check``: each question made to pass, warn and fail on hand-built data, and the
demo's figures recomputed from its JSONL from first principles."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import signalkit as sk

pytest.importorskip("duckdb")

from signalkit.analytics import load_events
from signalkit.analytics.check import QUESTIONS, Answer, Thresholds, run_check
from test_dataset import HOUR, Log, run_cli

DAY = 24 * HOUR


def answer(
    log: Log, tmp_path: Path, question: str, drop_seq: frozenset[int] = frozenset(), **t: Any
) -> Answer:
    """Write ``log`` (less the events whose seq is in ``drop_seq``), check one question."""
    path = tmp_path / "events.jsonl"
    kept = [e for e in log.events if e["seq"] not in drop_seq]
    path.write_text("".join(json.dumps(e) + "\n" for e in kept))
    with load_events(path) as loaded:
        [result] = run_check(loaded, Thresholds(**t), only=[question]).answers
    assert result.question == question
    return result


# -- captured ---------------------------------------------------------------------------------


def captured_log(strengths: list[float], silent: int) -> Log:
    """One exposure per strength (each gets that signal), ``silent`` exposures with none,
    then, 30 h later, a last exposure with a signal: every window before it has closed."""
    log = Log()
    for i, s in enumerate(strengths):
        exp = log.exposure(i * 60)
        log.signal(exp, "action", i * 60 + 5, action="accepted", strength=s, polarity=1.0)
    for j in range(silent):
        log.exposure(3600 + j * 60)
    last = log.exposure(30 * HOUR)
    log.signal(last, "action", 30 * HOUR + 5, action="clicked", strength=0.2, polarity=0.5)
    return log


@pytest.mark.parametrize(
    ("strengths", "silent", "verdicts"),
    [
        ([0.9, 0.85, 0.66, 0.2], 0, ("pass", "pass")),  # strong 2/5, coverage 4/4
        ([0.9, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], 3, ("warn", "pass")),  # strong 1/8, cover 7/10
        ([0.5, 0.5], 9, ("fail", "fail")),  # strong 0/3, coverage 2/11
        ([0.8, 0.8], 4, ("pass", "warn")),  # strong 2/3, coverage 2/6
    ],
)
def test_captured(
    tmp_path: Path, strengths: list[float], silent: int, verdicts: tuple[str, str]
) -> None:
    result = answer(captured_log(strengths, silent), tmp_path, "captured")
    strong_fig, cover_fig = result.figures
    signals = [*strengths, 0.2]  # the last exposure's click too
    strong_share = sum(s >= 0.7 for s in signals) / len(signals)
    coverage = len(strengths) / (len(strengths) + silent)  # the last exposure's window is open
    assert strong_fig.value == pytest.approx(strong_share)
    assert cover_fig.value == pytest.approx(coverage)
    assert strong_fig.detail["signals"] == len(signals)
    assert cover_fig.detail["exposures"] == len(strengths) + silent
    assert (strong_fig.verdict, cover_fig.verdict) == verdicts
    assert result.verdict == min(verdicts, key=["fail", "warn", "pass"].index)


def test_captured_thresholds_are_adjustable(tmp_path: Path) -> None:
    log = captured_log([0.9, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3], 3)
    assert answer(log, tmp_path, "captured", strong_share_pass=0.1).verdict == "pass"
    looser = answer(log, tmp_path, "captured", strong=0.3)  # now 7 of 8 are "strong"
    assert looser.figures[0].value == pytest.approx(7 / 8)


def test_captured_with_no_closed_window_warns_and_with_no_signal_fails(tmp_path: Path) -> None:
    log = Log()
    log.exposure(0)
    log.exposure(HOUR)
    result = answer(log, tmp_path, "captured")
    assert [f.verdict for f in result.figures] == ["fail", "warn"]
    assert result.figures[0].text == "no signals recorded"
    assert result.figures[1].value is None


# -- flowing ----------------------------------------------------------------------------------


def flowing_log(n: int) -> Log:
    log = Log()
    for i in range(n):
        log.exposure(i)
    return log


def test_flowing_pass_warn_fail(tmp_path: Path) -> None:
    log = flowing_log(200)
    ok = answer(log, tmp_path, "flowing")
    assert ok.verdict == "pass"
    assert ok.figures[0].value == 1.0
    assert ok.figures[0].detail["expected"] == 200
    warn = answer(log, tmp_path, "flowing", drop_seq=frozenset({17}))  # 199 of 200 = 99.5%
    assert warn.figures[0].value == pytest.approx(199 / 200)
    assert warn.figures[0].detail["missing"] == 1
    assert warn.verdict == "warn"
    lost = frozenset(range(50, 70))  # 180 of 200 = 90%
    fail = answer(log, tmp_path, "flowing", drop_seq=lost)
    assert fail.figures[0].value == pytest.approx(180 / 200)
    assert fail.verdict == "fail"
    # a threshold lowered below the figure passes it
    assert answer(log, tmp_path, "flowing", drop_seq=lost, delivered_pass=0.9).verdict == "pass"


def test_flowing_sees_a_lost_head_unless_told_to_count_from_the_first_seen(tmp_path: Path) -> None:
    log = flowing_log(100)
    head = frozenset(range(1, 11))  # seq 1..10 never arrived (or were rotated away)
    strict = answer(log, tmp_path, "flowing", drop_seq=head)
    assert strict.figures[0].value == pytest.approx(90 / 100)
    assert strict.figures[0].detail["producers_starting_after_1"] == 1
    assert strict.verdict == "fail"
    relaxed = answer(log, tmp_path, "flowing", drop_seq=head, from_first_seen=True)
    assert relaxed.figures[0].value == 1.0
    assert relaxed.verdict == "pass"


def test_flowing_counts_each_producer_and_redelivery_once(tmp_path: Path) -> None:
    a, b = Log("p-a"), Log("p-b")
    for i in range(100):
        a.exposure(i)
        b.exposure(i)
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps(e)
        for e in a.events + b.events
        if not (e["producer_id"] == "p-b" and e["seq"] == 100)
    ]
    lines += lines[:30]  # at-least-once: 30 events delivered twice
    path.write_text("\n".join(lines) + "\n")
    with load_events(path) as loaded:
        [result] = run_check(loaded, only=["flowing"]).answers
    fig = result.figures[0]
    # b's last event is lost, and nothing after it shows that: the tail is invisible
    assert fig.detail["expected"] == 199
    assert fig.value == 1.0
    assert fig.detail["duplicates"] == 30
    assert fig.detail["producers"] == 2
    assert "30 redelivered copies kept once" in fig.text


class HeldBackJsonl(sk.JsonlExporter):
    """A real JSONL sink that takes nothing until its gate opens (a sink that is down)."""

    name = "held-back"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()

    def export(self, batch: Any) -> Any:
        self.gate.wait(30)
        return super().export(batch)


def test_flowing_finds_exactly_the_events_a_real_client_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    sink = HeldBackJsonl(path)
    client = sk.Client("gap", exporters=[sink], max_queue=50, batch_size=10, flush_interval_s=0.01)
    for i in range(300):  # the sink is down: the bounded backlog overflows and drops
        with client.exposure("s", user_id=f"u{i % 5}"):
            pass
    sink.gate.set()
    assert client.flush(10)
    for _ in range(10):  # later events arrive, so the loss is a gap, not an invisible tail
        with client.exposure("s", user_id="later"):
            pass
    assert client.flush(10)
    stats = client.stats
    client.shutdown(5)
    lost = sum(stats.exporters["held-back"].dropped.values())
    assert lost > 0
    with load_events(path) as loaded:
        [result] = run_check(loaded, only=["flowing"]).answers
    fig = result.figures[0]
    assert fig.detail["expected"] == stats.recorded == 310
    assert fig.detail["missing"] == lost
    assert fig.value == pytest.approx((310 - lost) / 310)
    assert result.verdict == "fail"


# -- visible ----------------------------------------------------------------------------------


def versions_log(rates: dict[str, tuple[int, int, int]]) -> Log:
    """Per version: (exposures, accepted, corrected); each signal 10 s after its exposure."""
    log = Log()
    t = 0.0
    for version, (n, accepted, corrected) in rates.items():
        for i in range(n):
            t += 60
            exp = log.exposure(t, user=f"u{i % 7}", version=version)
            if i < accepted:
                log.accept(exp, t + 10)
            elif i < accepted + corrected:
                log.correct(exp, t + 10, "draft", "edited draft")
    return log


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def newcombe_significant(k1: int, n1: int, k2: int, n2: int) -> bool:
    """Newcombe's hybrid score interval of p2 − p1 (method 10) excludes 0."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p2 - p1
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return lower > 0 or upper < 0


@pytest.mark.parametrize(
    ("rates", "verdict"),
    [
        ({"v1": (120, 36, 30), "v2": (120, 72, 12)}, "pass"),  # act-on up, corrections down
        ({"v1": (120, 36, 30), "v2": (120, 72, 30)}, "pass"),  # act-on up; corrections same
        ({"v1": (120, 60, 20), "v2": (120, 63, 18)}, "warn"),  # nothing significant
        ({"v1": (120, 72, 12), "v2": (120, 36, 12)}, "fail"),  # act-on down: a regression
        ({"v1": (120, 72, 12), "v2": (120, 84, 30)}, "fail"),  # corrections up
    ],
)
def test_visible(tmp_path: Path, rates: dict[str, tuple[int, int, int]], verdict: str) -> None:
    result = answer(versions_log(rates), tmp_path, "visible")
    (n1, a1, c1), (n2, a2, c2) = rates["v1"], rates["v2"]
    act, corr = result.figures
    assert (act.detail["baseline"], act.detail["candidate"]) == ("v1", "v2")
    assert act.value == pytest.approx(a2 / n2 - a1 / n1)
    assert corr.value == pytest.approx(c2 / n2 - c1 / n1)
    assert (act.detail["baseline_count"], act.detail["candidate_count"]) == (a1, a2)
    assert act.detail["significant"] == newcombe_significant(a1, n1, a2, n2)
    assert corr.detail["significant"] == newcombe_significant(c1, n1, c2, n2)
    assert result.verdict == verdict


def test_visible_compares_the_last_two_versions_by_name_or_those_asked(tmp_path: Path) -> None:
    log = versions_log({"v10": (60, 40, 0), "v9": (60, 10, 0), "v2": (60, 30, 0)})
    auto = answer(log, tmp_path, "visible")
    assert (auto.figures[0].detail["baseline"], auto.figures[0].detail["candidate"]) == (
        "v9",
        "v10",
    )
    asked = answer(log, tmp_path, "visible", baseline="v2", candidate="v9")
    assert asked.figures[0].value == pytest.approx(10 / 60 - 30 / 60)
    assert asked.verdict == "fail"
    unknown = answer(log, tmp_path, "visible", candidate="v11")
    assert unknown.verdict == "warn"
    assert "no exposures of candidate 'v11'" in unknown.figures[0].text


def test_visible_with_one_version_warns(tmp_path: Path) -> None:
    result = answer(versions_log({"v1": (20, 10, 0)}), tmp_path, "visible")
    assert result.verdict == "warn"
    assert "only one model version" in result.figures[0].text


# -- usage ------------------------------------------------------------------------------------


def usage_log(per_day: list[tuple[int, int]]) -> Log:
    """Day d: ``users`` users with ``each`` exposures each, around noon. The data ends 50 min
    after the last day's exposures, so periods (1 day, counted back from the end) hold one
    day each and the first day is a partial period."""
    log = Log()
    last = None
    for d, (users, each) in enumerate(per_day):
        for u in range(users):
            for i in range(each):
                last = log.exposure(d * DAY + 12 * HOUR + u * 10 + i, user=f"u{u}")
    assert last is not None
    log.signal(
        last,
        "action",
        (len(per_day) - 1) * DAY + 12 * HOUR + 3000,
        action="clicked",
        strength=0.2,
        polarity=0.5,
    )
    return log


def expected_change(per_day: list[tuple[int, int]]) -> float:
    rates = [each for _, each in per_day[1:]]  # exposures per active user, day 0 left out
    half = len(rates) // 2
    early, late = sum(rates[:half]) / half, sum(rates[-half:]) / half
    return late / early - 1


@pytest.mark.parametrize(
    ("per_day", "verdict"),
    [
        ([(4, 2)] * 4 + [(4, 3)] * 4, "pass"),
        ([(5, 3), (5, 3), (6, 3), (4, 3), (6, 3), (5, 2), (5, 2), (3, 2)], "fail"),
        ([(3, 2)] * 8, "warn"),
        ([(3, 4), (3, 4), (8, 4), (8, 4), (9, 4), (2, 4), (2, 4)], "warn"),  # more users, same rate
    ],
)
def test_usage(tmp_path: Path, per_day: list[tuple[int, int]], verdict: str) -> None:
    result = answer(usage_log(per_day), tmp_path, "usage")
    fig = result.figures[0]
    assert [p["active_users"] for p in fig.detail["periods"]] == [u for u, _ in per_day[1:]]
    assert fig.value == pytest.approx(expected_change(per_day))
    assert result.verdict == verdict


def test_usage_needs_enough_history(tmp_path: Path) -> None:
    result = answer(usage_log([(3, 2), (3, 2), (3, 4)]), tmp_path, "usage")
    assert result.verdict == "warn"
    assert result.figures[0].value is None
    assert "2 complete 1d periods" in result.figures[0].text
    fewer = answer(usage_log([(3, 2), (3, 2), (3, 4)]), tmp_path, "usage", min_periods=2)
    assert fewer.figures[0].value == pytest.approx(4 / 2 - 1)  # day 1 vs day 2
    assert fewer.verdict == "pass"


# -- the command -------------------------------------------------------------------------------


def test_command_json_and_exit_status(tmp_path: Path) -> None:
    src = tmp_path / "events.jsonl"
    log = versions_log({"v1": (120, 72, 12), "v2": (120, 36, 12)})  # a regression
    src.write_text("".join(json.dumps(e) + "\n" for e in log.events) + "{oops\n")
    done = run_cli("check", str(src), "--format", "json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["verdict"] == "fail"
    assert [a["question"] for a in data["answers"]] == list(QUESTIONS)
    visible = next(a for a in data["answers"] if a["question"] == "visible")
    assert visible["verdict"] == "fail"
    assert visible["figures"][0]["value"] == pytest.approx(36 / 120 - 72 / 120)
    assert data["malformed"] == 1
    assert f"{src}:{len(log.events) + 1}: invalid JSON" in done.stderr
    healthy = run_cli("check", str(src), "--only", "flowing")
    assert healthy.returncode == 0, healthy.stderr
    assert "PASS  flowing: is it flowing to a sink?" in healthy.stdout
    assert "threshold: pass ≥ 99.9%, warn ≥ 99.0%" in healthy.stdout
    warned = run_cli("check", str(src), "--only", "usage")
    assert warned.returncode == 0
    assert run_cli("check", str(src), "--only", "usage", "--fail-on", "warn").returncode == 1
    bad = run_cli("check", str(src), "--strong", "7")
    assert bad.returncode == 2
    assert "--strong" in bad.stderr


def test_command_without_duckdb_gives_the_install_hint(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['duckdb'] = None\n"
        "from signalkit.cli import main\n"
        f"sys.exit(main(['check', {str(tmp_path)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install 'signalkit[report]'" in done.stderr


# -- the demo, recomputed from its JSONL -------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    done = run_cli("demo", "--users", "120", "--seed", "11", "--no-progress", "--out", str(path))
    assert done.returncode == 0, done.stderr
    return path, [json.loads(x) for x in path.read_text().splitlines()]


def ms(e: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(e["ts"]).timestamp() * 1000)


def test_demo_check_matches_first_principles(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    path, events = demo
    done = run_cli("check", str(path), "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    answers = {a["question"]: a for a in json.loads(done.stdout)["answers"]}

    signals = [e for e in events if e["kind"] != "exposure"]
    exposures = [e for e in events if e["kind"] == "exposure"]
    latest = max(ms(e) for e in events)
    strong, coverage = answers["captured"]["figures"]
    assert strong["value"] == pytest.approx(
        sum(e["score"]["strength"] >= 0.7 for e in signals) / len(signals)
    )
    signalled = {e["exposure_id"] for e in signals}
    closed = [e for e in exposures if ms(e) + 86_400_000 <= latest]
    assert coverage["value"] == pytest.approx(
        sum(e["id"] in signalled for e in closed) / len(closed)
    )

    seqs: dict[str, set[int]] = defaultdict(set)
    for e in events:
        seqs[e["producer_id"]].add(e["seq"])
    delivered = answers["flowing"]["figures"][0]
    assert delivered["detail"]["expected"] == sum(max(s) for s in seqs.values())
    assert delivered["value"] == 1.0  # the demo's JSONL sink got everything
    assert answers["flowing"]["verdict"] == "pass"

    # act-on: an accept/click/copy/share within 24 h of the exposure, per model version
    version_of = {e["id"]: e["model"]["version"] for e in exposures}
    shown = {e["id"]: ms(e) for e in exposures}
    acted: dict[str, set[str]] = defaultdict(set)
    for e in signals:
        if (
            e["kind"] == "action"
            and e["action"] in ("accepted", "clicked", "copied", "shared")
            and e["exposure_id"] in shown
            and 0 <= ms(e) - shown[e["exposure_id"]] <= 86_400_000
        ):
            acted[version_of[e["exposure_id"]]].add(e["exposure_id"])
    n = {v: sum(1 for x in version_of.values() if x == v) for v in set(version_of.values())}
    base, cand = "2026-10-01", "2026-11-01"
    act = answers["visible"]["figures"][0]
    assert (act["detail"]["baseline"], act["detail"]["candidate"]) == (base, cand)
    assert act["detail"]["baseline_rate"] == pytest.approx(len(acted[base]) / n[base])
    assert act["detail"]["candidate_rate"] == pytest.approx(len(acted[cand]) / n[cand])

    # usage: 1-day periods counted back from the latest event; the oldest, partial, left out
    complete = (latest - min(ms(e) for e in events)) // 86_400_000
    per: dict[int, list[str]] = defaultdict(list)
    for e in exposures:
        k = (latest - ms(e)) // 86_400_000
        if k < complete:
            per[k].append(e["subject"]["user_id"])
    rates = [len(per[k]) / len(set(per[k])) for k in sorted(per, reverse=True)]
    half = len(rates) // 2
    change = (sum(rates[-half:]) / half) / (sum(rates[:half]) / half) - 1
    assert answers["usage"]["figures"][0]["value"] == pytest.approx(change)


def test_demo_table_names_every_question(demo: tuple[Path, list[dict[str, Any]]]) -> None:
    done = run_cli("check", str(demo[0]))
    for question, title in QUESTIONS.items():
        assert f"{question}: {title}" in done.stdout
    assert "overall:" in done.stdout
    assert done.returncode == (1 if "overall: FAIL" in done.stdout else 0)
