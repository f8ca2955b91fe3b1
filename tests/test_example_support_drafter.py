"""examples/support_drafter: the README's command, its JSONL, and the DPO pairs it leads to."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "support_drafter"
SCRIPT = EXAMPLE / "drafter.py"


def uv_run(*args: str) -> list[str]:
    uv = shutil.which("uv")
    return [uv, "run", "--frozen", *args] if uv else [sys.executable, *args]


def run_example(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # The README's command, `uv run examples/support_drafter/drafter.py`, with an output dir.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SIGNALKIT_"))}
    full_env.update(env or {})
    cmd = uv_run(str(SCRIPT), "--dir", str(tmp_path / "signals"), *args)
    return subprocess.run(
        cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=180, check=False
    )


def events(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "signals" / "support_drafter.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [orjson.loads(line) for line in lines]


def table(stdout: str) -> dict[str, str]:
    """The printed table: label -> the rest of its line."""
    rows = re.findall(r"^  ([a-z ]+?) +(\d+.*)$", stdout, re.M)
    return dict(rows)


@pytest.fixture(scope="module")
def stand_in_module() -> ModuleType:
    """The example's own stand-in, loaded from its file (the example is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "support_drafter_stand_in", EXAMPLE / "stand_in.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offline_run_records_drafts_edits_and_outcomes_and_the_edits_become_dpo_pairs(
    tmp_path: Path, stand_in_module: ModuleType
) -> None:
    done = run_example(tmp_path, "--tickets", "30")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "via a local stand-in for the OpenAI API at http://127.0.0.1:" in out
    recorded = events(tmp_path)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in recorded:
        by_kind.setdefault(e["kind"], []).append(e)

    # Every draft is an exposure recorded by signalkit_openai, from the real OpenAI client.
    exposures = {e["id"]: e for e in by_kind["exposure"]}
    assert len(exposures) == 30
    response_ids = [e["attributes"]["gen_ai.response.id"] for e in exposures.values()]
    assert all(r.startswith("chatcmpl-") for r in response_ids)
    assert len(set(response_ids)) == 30
    for e in exposures.values():
        assert e["surface"] == "reply-draft"
        assert e["model"]["name"] == "gpt-4o-mini-2024-07-18"  # the snapshot that answered
        assert e["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
        assert e["attributes"]["gen_ai.usage.output_tokens"] > 0
        assert e["attributes"]["prompt"].startswith("From: ")
        assert e["latency_ms"] > 0

    # Each correction refers to a recorded exposure, its original is the draft that was shown
    # (the exposure's digest), the edit changed it, and its timing came through the token.
    corrections = by_kind["correction"]
    assert len(corrections) >= 5
    for c in corrections:
        shown = exposures[c["exposure_id"]]
        assert (
            hashlib.sha256(c["original"].encode()).hexdigest()
            == shown["attributes"]["signalkit.output.sha256"]
        )
        assert c["original"] == stand_in_module.draft_for(shown["attributes"]["prompt"])
        assert c["similarity"] < 1
        assert c["corrected"] != c["original"]
        assert c["time_to_action_ms"] > 0
        assert c["subject"]["user_id"].startswith("agent-")
        assert c["score"]["polarity"] < 0
    for e in recorded:
        assert e["exposure_id"] in exposures

    # The printed table is what the file holds.
    actions = by_kind.get("action", [])
    accepted = [a for a in actions if a["action"] == "accepted"]
    rejected = [a for a in actions if a["action"] == "rejected"]
    outcomes = by_kind.get("outcome", [])
    rows = table(out)
    assert rows["tickets"] == "30"
    assert rows["drafts"].startswith("30 ")
    assert rows["sources expanded"] == str(len(by_kind.get("toggle", [])))
    assert rows["sent as is"] == str(len(accepted))
    median = statistics.median(c["similarity"] for c in corrections)
    assert rows["edited"] == f"{len(corrections)}   median similarity {median:.2f}"
    assert rows["discarded"] == str(len(rejected))
    resolved = sum(1 for o in outcomes if o["success"])
    assert rows["resolved"] == f"{resolved} of {len(accepted) + len(corrections)} sent"
    assert len(accepted) + len(corrections) + len(rejected) == 30
    assert len(outcomes) == len(accepted) + len(corrections)  # a discarded draft has none
    assert f"recorded {len(recorded)} events: {len(recorded)} written to" in out

    # The dataset command it prints turns the corrections into preference pairs.
    command = re.search(r"^  (uv run signalkit dataset .+)$", out, re.M)
    assert command is not None, out
    args = shlex.split(command.group(1))[2:]  # after `uv run`
    made = subprocess.run(
        uv_run(*args), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert made.returncode == 0, made.stderr
    assert f"kept {len(corrections)} of {len(corrections)} corrections" in made.stderr
    pairs = [orjson.loads(line) for line in (tmp_path / "pairs.jsonl").read_bytes().splitlines()]
    by_event = {c["id"]: c for c in corrections}
    assert sorted(p["event_id"] for p in pairs) == sorted(by_event)
    for p in pairs:
        c = by_event[p["event_id"]]
        assert p["rejected"] == c["original"]  # the draft
        assert p["chosen"] == c["corrected"]  # what the agent sent
        assert p["prompt"] == exposures[c["exposure_id"]]["attributes"]["prompt"]
        assert p["prompt_source"] == "attribute"
        assert p["strength"] == c["score"]["strength"]


def test_with_openai_api_key_it_uses_the_sdks_own_configuration(
    tmp_path: Path, stand_in_module: ModuleType
) -> None:
    # OPENAI_API_KEY (and OPENAI_BASE_URL, as the SDK reads it) select the "real" API: here a
    # server the test runs, so the request the real client sends can be checked.
    with stand_in_module.LocalChatCompletions() as api:
        done = run_example(
            tmp_path,
            "--tickets",
            "6",
            "--model",
            "gpt-4.1-mini",
            env={"OPENAI_API_KEY": "sk-test-key-123", "OPENAI_BASE_URL": api.base_url},
        )
        assert done.returncode == 0, done.stderr
        assert "(OPENAI_API_KEY is set)" in done.stdout
        assert api.api_keys == ["sk-test-key-123"] * 6
        assert [r["model"] for r in api.requests] == ["gpt-4.1-mini"] * 6
        assert all([m["role"] for m in r["messages"]] == ["system", "user"] for r in api.requests)
        shown = [e for e in events(tmp_path) if e["kind"] == "exposure"]
        assert sorted(e["attributes"]["gen_ai.response.id"] for e in shown) == sorted(api.ids)
        assert {e["model"]["name"] for e in shown} == {"gpt-4.1-mini-2024-07-18"}


def test_a_failing_api_exits_1_and_records_nothing_for_the_failed_drafts(
    tmp_path: Path, stand_in_module: ModuleType
) -> None:
    with stand_in_module.LocalChatCompletions() as api:
        wrong = api.base_url.replace("/v1", "/wrong")  # a 404 from every call
        done = run_example(
            tmp_path, "--tickets", "5", env={"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": wrong}
        )
    assert done.returncode == 1
    assert "draft failed: T-1001: NotFoundError" in done.stderr
    assert table(done.stdout)["drafts"] == "0"
    assert not [e for e in events(tmp_path) if e["kind"] == "exposure"]


def test_events_it_cannot_write_are_reported_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "signals").write_text("a file where the output directory should be")
    done = run_example(tmp_path, "--tickets", "3")
    assert done.returncode == 1
    assert "drafts                3" in done.stdout
    recorded = re.search(
        r"recorded (\d+) events: 0 written to .+, (\d+) dropped, 0 rejected"
        r"(?:, (\d+) not written by exit)?",
        done.stdout,
    )
    assert recorded is not None, done.stdout
    assert int(recorded.group(1)) >= 3
    # each one accounted for: dropped by the shutdown deadline, or still inside the failing
    # export when the deadline came (a loaded machine)
    assert int(recorded.group(1)) == int(recorded.group(2)) + int(recorded.group(3) or 0)
    assert "cannot write" in done.stderr
