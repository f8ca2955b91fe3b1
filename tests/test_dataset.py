"""``signalkit dataset``: preference pairs and reward labels from hand-built and demo events."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("duckdb")

from signalkit.analytics import load_events
from signalkit.analytics._reward import RULES
from signalkit.analytics.dataset import DROP_REASONS, DatasetOptions, build_labels, build_pairs
from signalkit.events import parse_event

T0 = datetime(2020, 3, 2, 9, 0, tzinfo=UTC)  # backfilled history: years before "now"
HOUR = 3600.0


class Log:
    """Events built by hand, as a client would write them: valid, sequenced, scored."""

    def __init__(self, producer: str = "p-1") -> None:
        self.events: list[dict[str, Any]] = []
        self.producer = producer
        self.seq = 0

    def _base(
        self, kind: str, exposure_id: str | None, at_s: float, **fields: Any
    ) -> dict[str, Any]:
        self.seq += 1
        event_id = str(uuid.uuid4())
        event = {
            "schema_version": 1,
            "id": event_id,
            "ts": (T0 + timedelta(seconds=at_s)).isoformat().replace("+00:00", "Z"),
            "service": "test",
            "exposure_id": exposure_id or event_id,
            "producer_id": self.producer,
            "seq": self.seq,
            "subject": {
                "user_id": fields.pop("user", None),
                "anonymous_id": None,
                "session_id": None,
                "tenant_id": None,
            },
            "model": {
                "name": fields.pop("model", "drafter"),
                "version": fields.pop("version", None),
                "variant": None,
            },
            "trace_id": None,
            "span_id": None,
            "attributes": fields.pop("attributes", {}),
            "score": {
                "strength": fields.pop("strength", 0.0),
                "polarity": fields.pop("polarity", 0.0),
                "reasons": [],
                "policy": "test@1",
            },
            "kind": kind,
            **fields,
        }
        parse_event(event)  # every hand-built event is a valid signalkit event
        self.events.append(event)
        return event

    def exposure(
        self,
        at_s: float,
        user: str | None = "u1",
        version: str = "v1",
        surface: str = "reply-draft",
        **fields: Any,
    ) -> str:
        return str(
            self._base(
                "exposure", None, at_s, user=user, version=version, surface=surface, **fields
            )["id"]
        )

    def _of(self, exposure_id: str) -> dict[str, Any]:
        return next(e for e in self.events if e["id"] == exposure_id)

    def signal(self, exposure_id: str, kind: str, at_s: float, **fields: Any) -> dict[str, Any]:
        exp = self._of(exposure_id) if any(e["id"] == exposure_id for e in self.events) else None
        if exp is not None:
            fields.setdefault("user", exp["subject"]["user_id"])
            fields.setdefault("version", exp["model"]["version"])
        return self._base(kind, exposure_id, at_s, **fields)

    def accept(self, exp: str, at_s: float, strength: float = 0.66, **kw: Any) -> dict[str, Any]:
        return self.signal(
            exp, "action", at_s, action="accepted", strength=strength, polarity=1.0, **kw
        )

    def correct(
        self,
        exp: str,
        at_s: float,
        original: str,
        corrected: str,
        strength: float = 0.85,
        polarity: float = -0.8,
        similarity: float = 0.7,
    ) -> dict[str, Any]:
        return self.signal(
            exp,
            "correction",
            at_s,
            original=original,
            corrected=corrected,
            edit_distance=abs(len(corrected) - len(original)) + 1,
            similarity=similarity,
            strength=strength,
            polarity=polarity,
        )

    def write(self, path: Path, extra_lines: tuple[str, ...] = ()) -> Path:
        lines = [json.dumps(e) for e in self.events] + list(extra_lines)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def pairs_of(log: Log, tmp_path: Path, **options: Any) -> Any:
    with load_events(log.write(tmp_path / "events.jsonl")) as loaded:
        return build_pairs(loaded, DatasetOptions(**options))


def labels_of(log: Log, tmp_path: Path, **options: Any) -> Any:
    with load_events(log.write(tmp_path / "events.jsonl")) as loaded:
        return build_labels(loaded, DatasetOptions(**options))


# -- pairs -----------------------------------------------------------------------------------


def test_a_correction_is_a_preference_pair_with_the_exposures_prompt(tmp_path: Path) -> None:
    log = Log()
    exp = log.exposure(0, attributes={"prompt": "Where is my parcel?", "topic": "shipping"})
    c = log.correct(exp, 20, "It left today.", "It left today; tracking is in your email.")
    result = pairs_of(log, tmp_path)
    assert result.candidates == 1
    assert result.dropped == {}
    [record] = result.records
    assert record["prompt"] == "Where is my parcel?"
    assert record["prompt_source"] == "attribute"
    assert record["rejected"] == "It left today."
    assert record["chosen"] == "It left today; tracking is in your email."
    assert record["exposure_id"] == exp
    assert record["event_id"] == c["id"]
    assert record["similarity"] == 0.7
    assert record["strength"] == 0.85
    assert record["model"] == {"name": "drafter", "version": "v1", "variant": None}
    assert record["user_id"] == "u1"
    assert record["ts"] == "2020-03-02T09:00:20.000Z"


def test_without_a_prompt_attribute_the_prompt_is_the_exposures_context(tmp_path: Path) -> None:
    log = Log()
    exp = log.exposure(0, attributes={"topic": "refund", "lang": "en"})
    log.correct(exp, 20, "a", "b")
    [record] = pairs_of(log, tmp_path).records
    assert record["prompt"] == "surface: reply-draft\nlang: en\ntopic: refund"
    assert record["prompt_source"] == "context"
    required = pairs_of(log, tmp_path, require_prompt=True)
    assert required.records == []
    assert required.dropped == {"no_prompt": 1}
    other = pairs_of(log, tmp_path, prompt_attribute="topic")
    assert other.records[0]["prompt"] == "refund"


def test_pairs_drop_by_reason_and_every_candidate_is_accounted_for(tmp_path: Path) -> None:
    log = Log()
    exp = log.exposure(0, attributes={"prompt": "q"})
    log.correct(exp, 10, "same", "same", strength=0.3, polarity=0.6, similarity=1.0)
    log.correct(exp, 11, "weak", "weak.", strength=0.45, polarity=-0.2, similarity=0.98)
    log.correct(exp, 12, "orig", "better", strength=0.85)
    log.correct(exp, 13, "orig", "better", strength=0.9)  # the same pair again, stronger
    log.correct("not-recorded", 14, "x", "y")  # its exposure is not in the data
    result = pairs_of(log, tmp_path, min_strength=0.5)
    assert result.dropped == {
        "unchanged": 1,
        "below_min_strength": 1,
        "duplicate_pair": 1,
        "no_exposure": 1,
    }
    assert result.candidates == 5 == result.kept + sum(result.dropped.values())
    [record] = result.records
    assert (record["chosen"], record["strength"]) == ("better", 0.9)  # the strongest copy
    assert set(result.dropped) <= set(DROP_REASONS)


def test_a_redelivered_event_counts_once(tmp_path: Path) -> None:
    log = Log()
    exp = log.exposure(0, attributes={"prompt": "q"})
    c = log.correct(exp, 10, "a", "b")
    path = log.write(tmp_path / "events.jsonl", extra_lines=(json.dumps(c),))
    with load_events(path) as loaded:
        result = build_pairs(loaded)
    assert result.kept == 1
    assert result.dropped == {}
    assert result.duplicates == 1


def test_max_per_user_keeps_the_strongest_then_the_most_recent(tmp_path: Path) -> None:
    log = Log()
    strengths = {"u1": [0.9, 0.75, 0.9, 0.85], "u2": [0.45], None: [0.75, 0.75, 0.75]}
    for user, values in strengths.items():
        for i, s in enumerate(values):
            exp = log.exposure(i * HOUR, user=user, attributes={"prompt": f"{user}-{i}"})
            log.correct(exp, i * HOUR + 30, f"o{i}", f"c{i}", strength=s)
    result = pairs_of(log, tmp_path, max_per_user=2)
    kept = Counter((r["user_id"], r["strength"], r["prompt"]) for r in result.records)
    # u1: the two 0.9s (strongest); u2 under the cap; no user id: not capped
    assert kept == Counter(
        {
            ("u1", 0.9, "u1-0"): 1,
            ("u1", 0.9, "u1-2"): 1,
            ("u2", 0.45, "u2-0"): 1,
            (None, 0.75, "None-0"): 1,
            (None, 0.75, "None-1"): 1,
            (None, 0.75, "None-2"): 1,
        }
    )
    assert result.dropped == {"user_cap": 2}
    one = pairs_of(log, tmp_path, max_per_user=1)
    u1 = [r for r in one.records if r["user_id"] == "u1"]
    assert [r["prompt"] for r in u1] == ["u1-2"]  # of the tied strongest, the most recent


def test_since_until_and_model_version_select_exposures(tmp_path: Path) -> None:
    log = Log()
    for hour, version in ((0, "v1"), (5, "v1"), (10, "v2"), (15, "v2")):
        exp = log.exposure(hour * HOUR, version=version, attributes={"prompt": f"h{hour}"})
        log.correct(exp, hour * HOUR + 60, "o", f"c{hour}")
    since = int((T0 + timedelta(hours=5)).timestamp() * 1000)
    until = int((T0 + timedelta(hours=15)).timestamp() * 1000)
    ranged = pairs_of(log, tmp_path, since_ms=since, until_ms=until)
    assert [r["prompt"] for r in ranged.records] == ["h5", "h10"]  # [since, until)
    assert ranged.dropped == {"out_of_range": 2}
    v2 = pairs_of(log, tmp_path, model_versions=("v2",))
    assert [r["prompt"] for r in v2.records] == ["h10", "h15"]
    assert v2.dropped == {"not_selected": 2}


# -- labels ----------------------------------------------------------------------------------


def test_ignored_is_judged_against_the_datas_latest_time_not_the_clock(tmp_path: Path) -> None:
    log = Log()
    quiet_old = log.exposure(0)  # nothing happens; 25 h of data follow it
    quiet_new = log.exposure(2 * HOUR)  # nothing happens; only 23 h of data follow it
    busy = log.exposure(1 * HOUR)
    log.accept(busy, 1 * HOUR + 8)
    log.exposure(25 * HOUR, user="u9")  # the latest event in the data
    log.accept(log.events[-1]["id"], 25 * HOUR)
    result = labels_of(log, tmp_path)
    by_id = {r["exposure"]["id"]: r for r in result.records}
    assert by_id[quiet_old]["rules"] == ["ignored"]
    assert by_id[quiet_old]["label"] == -1.0
    assert by_id[quiet_old]["weight"] == 0.1
    assert by_id[quiet_old]["reward"] == pytest.approx(-0.1)
    assert quiet_new not in by_id
    assert result.dropped == {"window_open": 1}
    assert by_id[busy]["rules"] == ["single_signal"]
    # the window is adjustable; and ignored exposures can be left out
    assert labels_of(log, tmp_path, window_ms=22 * 3_600_000).dropped == {}
    assert labels_of(log, tmp_path, ignored=False).dropped == {
        "window_open": 1,
        "ignored_excluded": 1,
    }
    heavier = labels_of(log, tmp_path, ignored_strength=0.3)
    assert {r["exposure"]["id"]: r["weight"] for r in heavier.records}[quiet_old] == 0.3


def test_labels_carry_the_merged_reward_and_its_rules(tmp_path: Path) -> None:
    log = Log()
    edited = log.exposure(0, attributes={"topic": "refund"})
    a = log.accept(edited, 8)
    c = log.correct(edited, 30, "draft", "draft, edited", similarity=0.9)
    resolved = log.exposure(HOUR)
    log.accept(resolved, HOUR + 5)
    o = log.signal(
        resolved,
        "outcome",
        3 * HOUR,
        name="ticket_resolved",
        success=True,
        strength=0.92,
        polarity=1.0,
    )
    items = log.exposure(
        2 * HOUR,
        surface="kb",
        version="v2",
        items=[{"id": "kb-1", "position": 0, "propensity": 0.6, "score": None}],
    )
    log.signal(
        items, "action", 2 * HOUR + 9, action="clicked", item_id="kb-1", strength=0.24, polarity=0.5
    )
    result = labels_of(log, tmp_path)
    by_id = {r["exposure"]["id"]: r for r in result.records}

    rec = by_id[edited]
    expected = 0.66 * 0.9 + 0.85 * -0.8 * (1 - 0.9)
    assert rec["reward"] == pytest.approx(expected)
    assert rec["weight"] == 0.85
    assert rec["label"] == pytest.approx(expected / 0.85, abs=1e-6)
    assert rec["rules"] == ["correction_after_accept_lowers"]
    assert rec["basis"] == [a["id"], c["id"]]
    assert rec["signals"] == 2
    assert rec["exposure"]["attributes"] == {"topic": "refund"}
    assert rec["exposure"]["model"]["version"] == "v1"
    assert rec["exposure"]["subject"]["user_id"] == "u1"

    rec = by_id[resolved]
    assert (rec["reward"], rec["rules"], rec["basis"]) == (
        0.92,
        ["outcome_outweighs_signals"],
        [o["id"]],
    )
    rec = by_id[items]
    assert rec["item_id"] == "kb-1"
    assert rec["exposure"]["items"][0]["id"] == "kb-1"
    assert rec["exposure"]["surface"] == "kb"
    assert result.rules == {
        "correction_after_accept_lowers": 1,
        "outcome_outweighs_signals": 1,
        "single_signal": 1,
    }
    strong = labels_of(log, tmp_path, min_strength=0.5)
    assert {r["exposure"]["id"] for r in strong.records} == {edited, resolved}
    assert strong.dropped == {"below_min_strength": 1}


def test_signals_without_their_exposure_are_counted(tmp_path: Path) -> None:
    log = Log()
    log.accept("gone", 5)
    log.exposure(0)
    log.accept(log.events[-1]["id"], 9)
    result = labels_of(log, tmp_path)
    assert result.kept == 1
    assert result.orphan_signals == 1
    assert "signals without their exposure: 1" in result.summary()


def test_malformed_lines_are_counted_never_raised(tmp_path: Path) -> None:
    log = Log()
    exp = log.exposure(0, attributes={"prompt": "q"})
    log.correct(exp, 10, "a", "b")
    bad = ("{not json", "[1, 2]", '{"kind": "action"}', "\x00\x01", '"just a string"')
    path = log.write(tmp_path / "events.jsonl", extra_lines=bad)
    with load_events(path) as loaded:
        pairs = build_pairs(loaded)
        labels = build_labels(loaded)
    assert pairs.kept == 1
    assert pairs.malformed == len(bad) == labels.malformed
    assert f"{len(bad)} malformed lines" in pairs.summary()


# -- the command -----------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signalkit.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_command_writes_jsonl_and_a_summary_line(tmp_path: Path) -> None:
    log = Log()
    exp = log.exposure(0, attributes={"prompt": "q"})
    log.correct(exp, 10, "a", "b")
    log.correct(exp, 11, "a", "a", strength=0.3, polarity=0.6, similarity=1.0)
    src = log.write(tmp_path / "events.jsonl", extra_lines=("garbage",))
    out = tmp_path / "sets" / "pairs.jsonl"
    done = run_cli("dataset", str(src), "--format", "pairs", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    [line] = out.read_text().splitlines()
    assert json.loads(line)["chosen"] == "b"
    assert "kept 1 of 2 corrections; dropped: unchanged 1" in done.stderr
    assert "1 malformed lines" in done.stderr
    assert f"{src}:4: invalid JSON" in done.stderr
    to_stdout = run_cli("dataset", str(src), "--format", "labels")
    assert to_stdout.returncode == 0, to_stdout.stderr
    [record] = [json.loads(x) for x in to_stdout.stdout.splitlines()]
    assert record["rules"] == ["strongest_behaviour"]
    assert record["reward"] == pytest.approx(0.85 * -0.8)


def test_command_rejects_bad_options_naming_them(tmp_path: Path) -> None:
    done = run_cli("dataset", str(tmp_path), "--format", "pairs", "--min-strength", "2")
    assert done.returncode == 2
    assert "--min-strength" in done.stderr
    done = run_cli("dataset", str(tmp_path), "--format", "labels", "--window", "soon")
    assert done.returncode == 2
    assert "--window" in done.stderr
    missing = run_cli("dataset", str(tmp_path / "nothing"), "--format", "pairs")
    assert missing.returncode == 1
    assert "no JSONL events" in missing.stderr


def test_without_duckdb_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['duckdb'] = None\n"  # as if it were not installed
        "from signalkit.cli import main\n"
        f"sys.exit(main(['dataset', {str(tmp_path)!r}, '--format', 'pairs']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "pip install 'signalkit[report]'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    done = run_cli("demo", "--users", "60", "--seed", "3", "--no-progress", "--out", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_demo_pairs_are_exactly_its_real_corrections(demo_file: Path, tmp_path: Path) -> None:
    events = [json.loads(x) for x in demo_file.read_text().splitlines()]
    corrections = [e for e in events if e["kind"] == "correction"]
    changed = {
        (e["original"], e["corrected"]) for e in corrections if e["original"] != e["corrected"]
    }
    out = tmp_path / "pairs.jsonl"
    done = run_cli("dataset", str(demo_file), "--format", "pairs", "-o", str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert {(r["rejected"], r["chosen"]) for r in records} == changed
    assert len(records) == len(changed)
    exposures = {e["id"]: e for e in events if e["kind"] == "exposure"}
    for r in records:
        exp = exposures[r["exposure_id"]]
        assert r["prompt"].startswith(f"surface: {exp['surface']}")
        assert r["model"]["version"] == exp["model"]["version"]


def test_demo_labels_one_per_settled_exposure(demo_file: Path, tmp_path: Path) -> None:
    events = [json.loads(x) for x in demo_file.read_text().splitlines()]
    exposures = [e for e in events if e["kind"] == "exposure"]
    latest = max(datetime.fromisoformat(e["ts"]) for e in events)
    signalled = {e["exposure_id"] for e in events if e["kind"] != "exposure"}
    open_window = [
        e
        for e in exposures
        if e["id"] not in signalled
        and datetime.fromisoformat(e["ts"]) + timedelta(hours=24) > latest
    ]
    ignored = [e for e in exposures if e["id"] not in signalled and e not in open_window]
    done = run_cli("dataset", str(demo_file), "--format", "labels")
    assert done.returncode == 0, done.stderr
    records = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(records) == len(exposures) - len(open_window)
    assert sum(r["rules"] == ["ignored"] for r in records) == len(ignored)
    for r in records:
        assert set(r["rules"]) <= set(RULES)
        assert r["reward"] == pytest.approx(r["label"] * r["weight"], abs=1e-5)
    capped = run_cli("dataset", str(demo_file), "--format", "labels", "--max-per-user", "3")
    per_user = Counter(
        json.loads(x)["exposure"]["subject"]["user_id"] for x in capped.stdout.splitlines()
    )
    assert max(per_user.values()) == 3
