"""Tokens carry the exposure across processes: a real subprocess shows the exposure, this
process records what the user did, sharing only SIGNALKIT_SECRET."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import signalkit as sk

REPO = Path(__file__).resolve().parents[1]
SHARED = "a-secret-both-processes-share-0123456789"

SHOW = textwrap.dedent(
    """
    import signalkit as sk
    client = sk.Client("backend", exporters=[sk.MemoryExporter()])
    with client.exposure("reply", model="drafter", model_version="v3") as exp:
        pass
    print(exp.token)
    print(exp.shown_at_ms)
    """
)


def _exposure_from_another_process(secret: str) -> tuple[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SIGNALKIT_SECRET": secret}
    out = subprocess.run(
        [sys.executable, "-c", SHOW], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def test_time_to_action_is_computed_from_a_token_made_by_another_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, shown_at_ms = _exposure_from_another_process(SHARED)
    monkeypatch.setenv("SIGNALKIT_SECRET", f"{SHARED}")
    client = sk.Client("web", exporters=[sk.MemoryExporter()], strict=True)
    try:
        time.sleep(0.05)
        event = client.action(token, "accepted")
        assert event is not None
        now_ms = time.time_ns() // 1_000_000
        assert event.time_to_action_ms is not None
        assert 50 <= event.time_to_action_ms <= now_ms - shown_at_ms
        assert event.model.version == "v3"
        later = datetime.fromtimestamp((shown_at_ms + 7_200_000) / 1000, UTC)
        outcome = client.outcome(token, "resolved", success=True, at=later)
        assert outcome is not None
        assert outcome.delay_ms == 7_200_000
    finally:
        client.shutdown(2)


def test_a_token_from_a_process_with_another_secret_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, _ = _exposure_from_another_process("some-other-secret-0123456789")
    monkeypatch.setenv("SIGNALKIT_SECRET", SHARED)
    client = sk.Client("web", exporters=[sk.MemoryExporter()])
    try:
        assert client.action(token, "accepted") is None
        assert client.stats.rejected == {"token_unknown_key": 1}
        with pytest.raises(sk.InvalidToken) as info:
            client.verify(token)
        assert info.value.reason == "unknown_key"
    finally:
        client.shutdown(2)


def test_rotation_across_processes_old_tokens_verify_while_the_old_secret_is_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = "the-old-secret-0123456789abcdef"
    token, _ = _exposure_from_another_process(old)
    monkeypatch.setenv("SIGNALKIT_SECRET", f"{SHARED},{old}")
    client = sk.Client("web", exporters=[sk.MemoryExporter()], strict=True)
    try:
        assert client.verify(token).model.version == "v3"
    finally:
        client.shutdown(2)
