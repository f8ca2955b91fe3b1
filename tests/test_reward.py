"""The merged reward of an exposure: each written rule, on rows built by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import signalkit as sk
from signalkit.analytics._reward import RULES, ignored_reward, merge_signals, ts_ms

T0 = 1_760_000_000_000  # ms


def row(kind: str, at_s: float, strength: float, polarity: float, **extra: Any) -> dict[str, Any]:
    """One signal row, as the events table holds it."""
    return {
        "id": f"{kind}-{at_s}",
        "kind": kind,
        "ts_ms": T0 + int(at_s * 1000),
        "strength": strength,
        "polarity": polarity,
        **extra,
    }


def test_no_signal_is_no_reward() -> None:
    assert merge_signals([]) is None
    # a row without a score is not a signal
    assert merge_signals([{"id": "x", "kind": "action", "ts_ms": T0}]) is None


def test_single_signal_is_its_own_reward() -> None:
    merged = merge_signals([row("action", 5, 0.66, 1.0, action="accepted")])
    assert merged is not None
    assert merged.reward == pytest.approx(0.66)
    assert (merged.strength, merged.polarity) == (0.66, 1.0)
    assert merged.rules == ("single_signal",)
    assert merged.basis == ("action-5",)
    assert merged.signals == 1


def test_an_outcome_outweighs_an_accept() -> None:
    accept = row("action", 5, 0.66, 1.0, action="accepted")
    failed = row("outcome", 3600, 0.9587, -1.0, success=False)
    merged = merge_signals([accept, failed])
    assert merged is not None
    assert merged.reward == pytest.approx(-0.9587)
    assert merged.rules == ("outcome_outweighs_signals",)
    assert merged.basis == ("outcome-3600",)
    assert merged.signals == 2


def test_the_strongest_outcome_counts() -> None:
    early = row("outcome", 60, 1.0, 1.0, success=True)
    late = row("outcome", 3 * 86_400, 0.125, -1.0, success=False)
    merged = merge_signals([late, early])
    assert merged is not None
    assert merged.reward == 1.0
    assert merged.rules == ("strongest_outcome",)
    merged = merge_signals([late, early, row("feedback", 10, 0.85, -1.0, rating=-1.0)])
    assert merged is not None
    assert merged.rules == ("outcome_outweighs_signals", "strongest_outcome")


def test_a_later_rating_replaces_an_earlier_one() -> None:
    down = row("feedback", 10, 0.85, -1.0, rating=-1.0)
    up = row("feedback", 20, 0.85, 1.0, rating=1.0)
    merged = merge_signals([up, down])  # order of the rows does not matter, time does
    assert merged is not None
    assert merged.reward == pytest.approx(0.85)
    assert merged.rules == ("latest_rating_replaces_earlier",)
    assert merged.basis == ("feedback-20",)


def test_a_rating_outweighs_behaviour_but_a_comment_does_not() -> None:
    rewrite = row("correction", 30, 0.9, -1.0, similarity=0.3)
    up = row("feedback", 40, 0.85, 1.0, rating=1.0)
    merged = merge_signals([rewrite, up])
    assert merged is not None
    assert merged.reward == pytest.approx(0.85)
    assert merged.rules == ("rating_outweighs_behaviour",)
    comment = row("feedback", 40, 0.3, 0.0, comment="hmm")
    merged = merge_signals([rewrite, comment])
    assert merged is not None
    assert merged.reward == pytest.approx(-0.9)
    assert merged.rules == ("strongest_behaviour",)


def test_a_correction_after_an_accept_lowers_it_by_the_share_of_text_changed() -> None:
    accept = row("action", 8, 0.66, 1.0, action="accepted")
    similarity = 0.7
    edit = row("correction", 20, 0.85, -0.8, similarity=similarity)
    merged = merge_signals([accept, edit])
    assert merged is not None
    expected = 0.66 * 1.0 * similarity + 0.85 * -0.8 * (1 - similarity)
    assert merged.reward == pytest.approx(expected)
    assert merged.reward < 0.66  # lowered
    assert merged.strength == 0.85  # the stronger of the two
    assert merged.polarity == pytest.approx(expected / 0.85, abs=1e-6)
    assert merged.rules == ("correction_after_accept_lowers",)
    assert merged.basis == ("action-8", "correction-20")


def test_an_unchanged_correction_leaves_the_accept_alone() -> None:
    accept = row("action", 8, 0.66, 1.0, action="accepted")
    same = row("correction", 20, 0.3, 0.6, similarity=1.0)
    merged = merge_signals([accept, same])
    assert merged is not None
    assert merged.reward == pytest.approx(0.66)


def test_a_correction_before_the_accept_is_plain_behaviour() -> None:
    edit = row("correction", 5, 0.85, -0.8, similarity=0.7)
    accept = row("action", 8, 0.66, 1.0, action="accepted")
    merged = merge_signals([edit, accept])
    assert merged is not None
    assert merged.rules == ("strongest_behaviour",)
    assert merged.reward == pytest.approx(0.85 * -0.8)


def test_strongest_behaviour_ties_go_to_the_latest() -> None:
    click = row("action", 5, 0.25, 0.5, action="clicked", item_id="kb-1")
    expand = row("toggle", 9, 0.25, 0.5, state="expanded")
    merged = merge_signals([click, expand])
    assert merged is not None
    assert merged.basis == ("toggle-9",)
    merged = merge_signals([click, row("toggle", 9, 0.2, -0.2, state="collapsed")])
    assert merged is not None
    assert merged.item_id == "kb-1"  # the deciding signal's item


def test_ignored_is_a_weak_negative() -> None:
    merged = ignored_reward()
    assert merged.rules == ("ignored",)
    assert merged.reward == pytest.approx(-0.1)
    assert merged.basis == ()
    assert ignored_reward(0.2, -0.5).reward == pytest.approx(-0.1)


def test_every_rule_applied_is_documented() -> None:
    cases = [
        [row("action", 1, 0.5, 1.0)],
        [row("action", 1, 0.5, 1.0), row("outcome", 9, 1.0, 1.0)],
        [row("outcome", 1, 0.5, 1.0), row("outcome", 9, 1.0, 1.0)],
        [row("feedback", 1, 0.85, 1.0, rating=1.0), row("action", 2, 0.5, 1.0)],
        [row("feedback", 1, 0.85, 1.0, rating=1.0), row("feedback", 2, 0.85, 1.0, choice="b")],
        [row("action", 1, 0.5, 1.0), row("action", 2, 0.4, -0.7)],
        [row("action", 1, 0.5, 1.0), row("correction", 2, 0.85, -0.8, similarity=0.6)],
    ]
    seen = {ignored_reward().rules[0]}
    for signals in cases:
        merged = merge_signals(signals)
        assert merged is not None
        seen.update(merged.rules)
    assert seen == set(RULES)
    doc = (Path(__file__).parents[1] / "docs" / "dataset.md").read_text(encoding="utf-8")
    for name in RULES:
        assert f"`{name}`" in doc, name


def test_ts_ms_reads_text_datetimes_and_numbers() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    shown = datetime(2026, 11, 20, 4, 47, 9, 533000, tzinfo=UTC)
    assert ts_ms("2026-11-20T04:47:09.533000Z") == (shown - epoch) // timedelta(milliseconds=1)
    assert ts_ms(shown) == (shown - epoch) // timedelta(milliseconds=1)
    assert ts_ms(1_000) == 1_000
    assert ts_ms("yesterday") is None
    assert ts_ms("2026-11-20T04:47:09") is None  # naive: no zone, no time
    assert ts_ms(True) is None


def test_a_real_clients_accept_then_light_edit_merges_as_documented() -> None:
    mem = sk.MemoryExporter()
    client = sk.Client("reward", exporters=[mem], secret="s" * 32)
    shown = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with client.exposure("reply-draft", model="m", model_version="v1", at=shown) as exp:
        pass
    original = "Your refund was approved and reaches your card in 3-5 days."
    corrected = "Your refund was approved and reaches your card in 3 to 5 days."
    accept = client.action(exp, "accepted", at=shown + timedelta(seconds=10))
    edit = client.correction(exp, original, corrected, at=shown + timedelta(seconds=40))
    assert client.flush(5)
    client.shutdown(5)
    assert accept is not None
    assert accept.score is not None
    assert edit is not None
    assert edit.score is not None
    # the default policy: a considered accept 0.55 × 1.2, a light edit 0.75 × −0.5
    assert (accept.score.strength, accept.score.polarity) == pytest.approx((0.66, 1.0))
    assert 0.85 <= edit.similarity < 0.97
    assert (edit.score.strength, edit.score.polarity) == pytest.approx((0.75, -0.5))
    rows = [
        {
            "id": e.id,
            "kind": e.kind,
            "ts_ms": ts_ms(e.ts),
            "strength": e.score.strength if e.score else None,
            "polarity": e.score.polarity if e.score else None,
            "similarity": getattr(e, "similarity", None),
        }
        for e in mem.events
        if e.kind != "exposure"
    ]
    merged = merge_signals(rows)
    assert merged is not None
    s = edit.similarity
    assert merged.reward == pytest.approx(0.66 * s + 0.75 * -0.5 * (1 - s), abs=1e-6)
    assert merged.strength == 0.75
    assert merged.rules == ("correction_after_accept_lowers",)
