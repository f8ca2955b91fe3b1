"""examples/posthog_pipe: the README's command works offline and against a PostHog-shaped sink."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from sinks import FaultySink

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "posthog_pipe" / "pipe.py"


def run_example(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # The README's command: `uv run examples/posthog_pipe/pipe.py` (same environment as ours).
    uv = shutil.which("uv")
    cmd = [uv, "run", "--frozen", str(SCRIPT)] if uv else [sys.executable, str(SCRIPT)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    full_env.update(env, SIGNALKIT_DIR=str(tmp_path))
    return subprocess.run(
        cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120, check=False
    )


def jsonl_ids(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "posthog_pipe.jsonl").read_bytes().splitlines()
    return [orjson.loads(line)["id"] for line in lines]


def test_without_a_key_it_runs_against_the_local_stand_in(tmp_path: Path) -> None:
    done = run_example({}, tmp_path)
    assert done.returncode == 0, done.stderr
    ids = jsonl_ids(tmp_path)
    assert f"recorded {len(ids)} events" in done.stdout
    assert f"the stand-in received {len(ids)} events" in done.stdout
    assert '"event": "signalkit correction"' in done.stdout


def test_with_a_key_every_event_reaches_posthogs_batch_endpoint(tmp_path: Path) -> None:
    sink = FaultySink(path="/batch/").start()
    sink.script([503])  # PostHog having a bad moment: the exporter retries
    try:
        done = run_example(
            {"POSTHOG_API_KEY": "phc_test_key", "POSTHOG_HOST": sink.base_url, "USERS": "40"},
            tmp_path,
        )
        assert done.returncode == 0, done.stderr
        accepted = [r for r in sink.requests if r.accepted]
        assert accepted
        assert all(r.path == "/batch/" and r.json()["api_key"] == "phc_test_key" for r in accepted)
        uuids = [e["uuid"] for r in accepted for e in r.json()["batch"]]
        assert sorted(set(uuids)) == sorted(jsonl_ids(tmp_path))
        assert sink.requests[0].status == 503
    finally:
        sink.stop()
