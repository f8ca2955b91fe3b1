"""Scoring: how far each signal is trusted (strength) and which way it points (polarity)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import signalkit as sk
from signalkit.scoring import ActionRule

SECRET = "s" * 32
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


def after(exp: sk.Exposure, ms: float) -> datetime:
    """The time ``ms`` milliseconds after ``exp`` was shown."""
    return EPOCH + timedelta(milliseconds=exp.shown_at_ms + ms)


def scored(event: sk.Event | None) -> sk.Score:
    assert event is not None, "the call was rejected"
    assert event.score is not None
    return event.score


# -- actions and time-to-action -----------------------------------------------------------------


def test_a_sub_second_accept_is_weaker_than_a_considered_accept(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    reflexive = scored(client.action(exposure, "accepted", at=after(exposure, 400)))
    considered = scored(client.action(exposure, "accepted", at=after(exposure, 12_000)))
    assert 0 < reflexive.strength < considered.strength
    assert reflexive.polarity > 0
    assert considered.polarity > 0
    assert considered.strength == pytest.approx(0.55 * 1.2)
    assert reflexive.strength == pytest.approx(0.55 * 0.5)


def test_time_to_action_is_named_among_the_reasons_of_an_action(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    score = scored(client.action(exposure, "accepted", at=after(exposure, 12_000)))
    factors = {r.factor: r for r in score.reasons}
    assert factors["time_to_action"].effect == pytest.approx(1.2)
    assert "considered" in factors["time_to_action"].note


def test_a_late_accept_is_discounted_for_uncertain_attribution(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    considered = scored(client.action(exposure, "accepted", at=after(exposure, 10_000)))
    late = scored(client.action(exposure, "accepted", at=after(exposure, 2 * HOUR_MS)))
    assert late.strength < considered.strength
    assert late.polarity == considered.polarity


def test_an_action_with_unknown_time_to_action_is_slightly_discounted(client: sk.Client) -> None:
    from signalkit._ids import new_id

    event = client.action(new_id(), "accepted")  # an exposure this process never saw
    assert event is not None
    assert event.time_to_action_ms is None
    assert scored(event).strength == pytest.approx(0.55 * 0.9)


def test_a_rejection_is_negative_and_a_click_is_a_weak_positive(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    rejected = scored(client.action(exposure, "rejected", at=after(exposure, 5_000)))
    clicked = scored(client.action(exposure, "clicked", at=after(exposure, 5_000)))
    accepted = scored(client.action(exposure, "accepted", at=after(exposure, 5_000)))
    assert rejected.polarity == -1.0
    assert 0 < clicked.polarity < accepted.polarity
    assert clicked.strength < accepted.strength


def test_an_unknown_action_is_recorded_nearly_weightless_and_neutral(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    score = scored(client.action(exposure, "bookmarked", at=after(exposure, 5_000)))
    assert score.polarity == 0.0
    assert score.strength < 0.25


# -- corrections ---------------------------------------------------------------------------------

SENTENCE = "Thank you for reaching out, your refund was issued on Monday."


def test_corrections_are_negative_and_graded_by_edit_size(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    typo = client.correction(exposure, SENTENCE, SENTENCE.replace("Monday", "Monday!"))
    light = client.correction(exposure, SENTENCE, SENTENCE.replace("on Monday", "yesterday"))
    rewrite = client.correction(exposure, SENTENCE, "Sorry, we cannot refund this order.")
    assert typo is not None
    assert light is not None
    assert rewrite is not None
    assert typo.edit_distance == 1
    assert typo.similarity > light.similarity > rewrite.similarity
    for event in (typo, light, rewrite):
        assert scored(event).polarity < 0
    assert scored(rewrite).strength > scored(light).strength > scored(typo).strength
    assert scored(rewrite).polarity < scored(light).polarity < scored(typo).polarity


def test_a_rewrite_is_stronger_and_more_negative_than_a_typo_fix(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    typo = scored(client.correction(exposure, SENTENCE, SENTENCE.replace("refund", "refudn")))
    rewrite = scored(client.correction(exposure, SENTENCE, "Please call us."))
    assert rewrite.strength > typo.strength
    assert rewrite.polarity < typo.polarity < 0
    assert rewrite.polarity == -1.0


def test_a_correction_that_changes_nothing_counts_as_use_as_is(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.correction(exposure, SENTENCE, SENTENCE)
    assert event is not None
    assert event.similarity == 1.0
    assert event.edit_distance == 0
    assert scored(event).polarity > 0


def test_correction_similarity_is_normalised_levenshtein(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.correction(exposure, "kitten", "sitting")
    assert event is not None
    assert event.edit_distance == 3
    assert event.similarity == pytest.approx(1 - 3 / 7, abs=1e-6)


def test_correction_reasons_name_the_edit_size(client: sk.Client, exposure: sk.Exposure) -> None:
    score = scored(client.correction(exposure, SENTENCE, "No."))
    assert [r.factor for r in score.reasons] == ["edit_size"]
    assert "rewrite" in score.reasons[0].note


# -- toggles -------------------------------------------------------------------------------------


def test_an_expand_is_a_weak_positive(client: sk.Client, exposure: sk.Exposure) -> None:
    expand = scored(client.toggle(exposure, "expanded"))
    accept = scored(client.action(exposure, "accepted", at=after(exposure, 10_000)))
    assert expand.polarity > 0
    assert 0 < expand.strength < accept.strength


def test_a_quick_collapse_is_negative(client: sk.Client, exposure: sk.Exposure) -> None:
    quick = scored(client.toggle(exposure, "collapsed", dwell_ms=800))
    assert quick.polarity < 0
    assert quick.strength > 0


def test_a_collapse_after_reading_is_not_negative(client: sk.Client, exposure: sk.Exposure) -> None:
    quick = scored(client.toggle(exposure, "collapsed", dwell_ms=800))
    read = scored(client.toggle(exposure, "collapsed", dwell_ms=20_000))
    assert read.polarity >= 0 > quick.polarity


# -- outcomes ------------------------------------------------------------------------------------


def test_an_immediate_outcome_outweighs_every_action_and_explicit_rating(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    outcome = scored(client.outcome(exposure, "purchase", success=True, at=after(exposure, 60_000)))
    others = [client.action(exposure, verb, at=after(exposure, 10_000)) for verb in DEFAULT_ACTIONS]
    others.append(client.feedback(exposure, rating=1))
    others.append(client.feedback(exposure, choice="a"))
    others.append(client.toggle(exposure, "expanded"))
    assert all(outcome.strength > scored(e).strength for e in others)


DEFAULT_ACTIONS = sorted(sk.DEFAULT_POLICY.actions)


def test_an_immediate_outcome_is_the_strongest_signal_of_all(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    outcome = scored(client.outcome(exposure, "purchase", success=True, at=after(exposure, 60_000)))
    rewrite = scored(client.correction(exposure, SENTENCE, "Please call us."))
    assert outcome.strength >= rewrite.strength


def test_outcome_strength_halves_every_half_life(client: sk.Client, exposure: sk.Exposure) -> None:
    half_life = sk.DEFAULT_POLICY.outcome_half_life_ms
    s0 = scored(client.outcome(exposure, "resolved", success=True, at=after(exposure, 0)))
    s1 = scored(client.outcome(exposure, "resolved", success=True, at=after(exposure, half_life)))
    s2 = scored(
        client.outcome(exposure, "resolved", success=True, at=after(exposure, 2 * half_life))
    )
    assert s0.strength == pytest.approx(sk.DEFAULT_POLICY.outcome_strength)
    assert s1.strength == pytest.approx(s0.strength / 2, abs=1e-3)
    assert s2.strength == pytest.approx(s0.strength / 4, abs=1e-3)


def test_outcome_attribution_has_a_floor(client: sk.Client, exposure: sk.Exposure) -> None:
    late = scored(client.outcome(exposure, "resolved", at=after(exposure, 20 * 86_400_000)))
    p = sk.DEFAULT_POLICY
    assert late.strength == pytest.approx(p.outcome_strength * p.outcome_min_factor)


def test_outcome_delay_is_recorded_and_named_in_the_reasons(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.outcome(exposure, "resolved", success=True, at=after(exposure, 6 * HOUR_MS))
    assert event is not None
    assert event.delay_ms == 6 * HOUR_MS
    attribution = {r.factor: r for r in scored(event).reasons}["attribution"]
    assert attribution.effect == pytest.approx(0.5**0.25, abs=1e-4)


def test_outcome_polarity_follows_success(client: sk.Client, exposure: sk.Exposure) -> None:
    won = scored(client.outcome(exposure, "task", success=True))
    lost = scored(client.outcome(exposure, "task", success=False))
    unstated = scored(client.outcome(exposure, "task"))
    assert won.polarity == 1.0
    assert lost.polarity == -1.0
    assert 0 < unstated.polarity < 1.0


# -- explicit feedback ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rating", "scale", "polarity"),
    [
        (-1, (-1, 1), -1.0),
        (1, (-1, 1), 1.0),
        (1, (1, 5), -1.0),
        (2, (1, 5), -0.5),
        (4, (1, 5), 0.5),
        (5, (1, 5), 1.0),
        (7.5, (0, 10), 0.5),
    ],
)
def test_an_explicit_rating_maps_linearly_onto_polarity(
    client: sk.Client,
    exposure: sk.Exposure,
    rating: float,
    scale: tuple[float, float],
    polarity: float,
) -> None:
    score = scored(client.feedback(exposure, rating=rating, scale=scale))
    assert score.polarity == pytest.approx(polarity)
    assert score.strength == pytest.approx(0.85)


def test_a_mid_scale_rating_is_neutral_and_weaker(client: sk.Client, exposure: sk.Exposure) -> None:
    mid = scored(client.feedback(exposure, rating=3, scale=(1, 5)))
    top = scored(client.feedback(exposure, rating=5, scale=(1, 5)))
    assert mid.polarity == 0.0
    assert mid.strength < top.strength


def test_a_choice_is_a_strong_positive_and_a_lone_comment_is_neutral(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    choice = scored(client.feedback(exposure, choice="b"))
    comment = scored(client.feedback(exposure, comment="hmm"))
    assert choice.polarity > 0
    assert choice.strength >= 0.8
    assert comment.polarity == 0.0


def test_feedback_is_stronger_than_a_click(client: sk.Client, exposure: sk.Exposure) -> None:
    thumbs = scored(client.feedback(exposure, rating=1))
    click = scored(client.action(exposure, "clicked", at=after(exposure, 10_000)))
    assert thumbs.strength > click.strength


# -- every score explains itself -----------------------------------------------------------------


def _one_of_each(client: sk.Client, exposure: sk.Exposure) -> list[sk.Event | None]:
    return [
        exposure.event,
        client.action(exposure, "accepted"),
        client.correction(exposure, "a", "b"),
        client.toggle(exposure, "expanded"),
        client.toggle(exposure, "collapsed"),
        client.outcome(exposure, "done"),
        client.feedback(exposure, rating=1),
        client.feedback(exposure, comment="c"),
    ]


def test_every_score_has_reasons_and_names_the_default_policy(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    for event in _one_of_each(client, exposure):
        score = scored(event)
        assert score.policy == "default@1"
        assert score.reasons, event
        for reason in score.reasons:
            assert reason.factor
            assert reason.note
        assert 0.0 <= score.strength <= 1.0
        assert -1.0 <= score.polarity <= 1.0


def test_an_exposure_is_context_not_a_signal(exposure: sk.Exposure) -> None:
    assert exposure.event is not None
    assert scored(exposure.event).strength == 0.0


def test_score_is_a_pure_function_of_the_event(client: sk.Client, exposure: sk.Exposure) -> None:
    for event in _one_of_each(client, exposure):
        assert event is not None
        assert sk.score(event) == event.score
        assert sk.score(event, sk.DEFAULT_POLICY) == sk.score(event, sk.DEFAULT_POLICY)


# -- the policy is data: TOML --------------------------------------------------------------------

OVERRIDE = """
name = "support"
version = 3
outcome_half_life_ms = 3600000
"""


def test_from_toml_text_overrides_a_number_and_keeps_the_rest() -> None:
    policy = sk.ScoringPolicy.from_toml(OVERRIDE)
    assert policy.outcome_half_life_ms == 3_600_000
    assert policy.ref == "support@3"
    assert policy.feedback_strength == sk.DEFAULT_POLICY.feedback_strength
    assert policy.latency_bands == sk.DEFAULT_POLICY.latency_bands


def test_from_toml_reads_a_file_given_as_path_or_str(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(OVERRIDE, encoding="utf-8")
    assert sk.ScoringPolicy.from_toml(path).ref == "support@3"
    assert sk.ScoringPolicy.from_toml(str(path)).ref == "support@3"


def test_a_client_scores_with_the_policy_it_was_given(memory: sk.MemoryExporter) -> None:
    policy = sk.ScoringPolicy.from_toml(OVERRIDE)
    client = sk.Client("svc", exporters=[memory], secret=SECRET, policy=policy)
    try:
        with client.exposure("s") as exp:
            pass
        event = client.outcome(exp, "resolved", success=True, at=after(exp, HOUR_MS))
        score = scored(event)
        assert score.policy == "support@3"
        assert score.strength == pytest.approx(0.5, abs=1e-3)  # one (short) half-life
    finally:
        client.shutdown(timeout=2)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[actions.accepted]\nstrength = 2.0\npolarity = 1.0\n", "actions.accepted.strength"),
        ("outcome_strength = -0.5\n", "outcome_strength"),
        ("outcome_half_life_ms = 0\n", "outcome_half_life_ms"),
        ("feedback_strength = 'high'\n", "feedback_strength"),
        ("no_such_setting = 1\n", "no_such_setting"),
        (
            "[[latency_bands]]\nbelow_ms = 5000\nfactor = 1.0\nlabel = 'a'\n"
            "[[latency_bands]]\nbelow_ms = 1000\nfactor = 1.0\nlabel = 'b'\n"
            "[[latency_bands]]\nfactor = 1.0\nlabel = 'c'\n",
            "latency_bands",
        ),
        (
            "[[edit_bands]]\nmin_similarity = 0.5\nstrength = 0.5\npolarity = -0.5\nlabel = 'x'\n",
            "edit_bands",
        ),
    ],
)
def test_from_toml_raises_config_error_naming_the_bad_key(toml: str, key: str) -> None:
    with pytest.raises(sk.ConfigError, match=key.replace(".", r"\.")):
        sk.ScoringPolicy.from_toml(toml)


def test_from_toml_raises_config_error_for_broken_toml_or_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(sk.ConfigError):
        sk.ScoringPolicy.from_toml("name = \n")
    with pytest.raises(sk.ConfigError, match=r"missing\.toml"):
        sk.ScoringPolicy.from_toml(tmp_path / "missing.toml")


def test_from_toml_overriding_one_action_keeps_the_other_default_actions() -> None:
    policy = sk.ScoringPolicy.from_toml("[actions.accepted]\nstrength = 0.6\npolarity = 1.0\n")
    assert policy.actions["accepted"].strength == 0.6
    assert set(policy.actions) == set(sk.DEFAULT_POLICY.actions)


def test_a_policy_is_validated_data() -> None:
    with pytest.raises(sk.ConfigError, match="outcome_strength"):
        sk.ScoringPolicy.from_dict({"outcome_strength": 1.5})
    with pytest.raises(sk.ConfigError, match="policy"):
        sk.Client("svc", exporters=[sk.MemoryExporter()], policy="default@1")  # type: ignore[arg-type]


def test_a_policy_derived_with_model_copy_scores_with_its_own_numbers(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    event = client.action(exposure, "accepted", at=after(exposure, 10_000))
    assert event is not None
    assert scored(event).strength == pytest.approx(0.66)
    generous = sk.DEFAULT_POLICY.model_copy(
        update={"actions": {"accepted": ActionRule(strength=0.8, polarity=1.0)}}
    )
    assert sk.score(event, generous).strength == pytest.approx(min(1.0, 0.8 * 1.2))


# -- custom scorers ------------------------------------------------------------------------------


@pytest.fixture
def scorer_client(memory: sk.MemoryExporter) -> Iterator[tuple[sk.Client, list[str]]]:
    """A client whose custom scorer boosts actions with attribute plan=enterprise, returns None
    for other events, and raises for corrections."""
    seen: list[str] = []

    def scorer(event: sk.Event, policy: sk.ScoringPolicy) -> sk.Score | None:
        seen.append(event.kind)
        assert event.score is None  # the scorer gets the event before it is scored
        if event.kind == "correction":
            raise ValueError("scorer bug")
        if event.attributes.get("plan") == "enterprise":
            return sk.Score(strength=1.0, polarity=1.0, policy="enterprise@1")
        return None

    client = sk.Client("svc", exporters=[memory], secret=SECRET, scorer=scorer)
    yield client, seen
    client.shutdown(timeout=2)


def test_a_custom_scorer_is_used_by_the_client(
    scorer_client: tuple[sk.Client, list[str]],
) -> None:
    client, seen = scorer_client
    with client.exposure("s") as exp:
        pass
    event = client.action(exp, "accepted", attributes={"plan": "enterprise"})
    assert scored(event).policy == "enterprise@1"
    assert scored(event).strength == 1.0
    assert seen == ["exposure", "action"]


def test_a_custom_scorer_returning_none_falls_back_to_the_policy(
    scorer_client: tuple[sk.Client, list[str]],
) -> None:
    client, _ = scorer_client
    with client.exposure("s") as exp:
        pass
    event = client.action(exp, "accepted", attributes={"plan": "free"})
    assert event is not None
    assert scored(event).policy == "default@1"
    assert scored(event) == sk.score(event)


def test_a_custom_scorer_that_raises_falls_back_to_the_policy_and_warns(
    scorer_client: tuple[sk.Client, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = scorer_client
    with client.exposure("s") as exp:
        pass
    with caplog.at_level(logging.WARNING, logger="signalkit"):
        event = client.correction(exp, "abc", "abd")
        client.flush(2)
    assert event is not None
    assert scored(event).policy == "default@1"
    assert "scorer bug" in caplog.text


def test_a_custom_scorer_returning_a_non_score_falls_back_to_the_policy(
    memory: sk.MemoryExporter,
) -> None:
    client = sk.Client("svc", exporters=[memory], secret=SECRET, scorer=lambda event, policy: 0.5)
    try:
        with client.exposure("s") as exp:
            pass
        assert scored(client.action(exp, "accepted")).policy == "default@1"
    finally:
        client.shutdown(timeout=2)


def test_a_custom_scorer_that_raises_in_strict_mode_raises(memory: sk.MemoryExporter) -> None:
    def broken(event: sk.Event, policy: sk.ScoringPolicy) -> sk.Score | None:
        raise ValueError("scorer bug")

    client = sk.Client("svc", exporters=[memory], secret=SECRET, scorer=broken, strict=True)
    try:
        with pytest.raises(ValueError, match="scorer bug"), client.exposure("s"):
            pass
    finally:
        client.shutdown(timeout=2)


def test_a_scorer_that_is_not_callable_is_a_config_error() -> None:
    with pytest.raises(sk.ConfigError, match="scorer"):
        sk.Client("svc", exporters=[sk.MemoryExporter()], scorer="default")  # type: ignore[arg-type]


# -- rescoring stored events ---------------------------------------------------------------------


def test_rescore_returns_rescored_copies_and_leaves_the_originals_unchanged(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    events = [
        e
        for e in (
            client.outcome(exposure, "resolved", success=True, at=after(exposure, HOUR_MS)),
            client.action(exposure, "accepted", at=after(exposure, 10_000)),
        )
        if e is not None
    ]
    before = [e.model_dump() for e in events]
    policy = sk.ScoringPolicy.from_toml(OVERRIDE)

    rescored = sk.rescore(events, policy)

    assert [e.model_dump() for e in events] == before
    assert len(rescored) == len(events)
    for old, new in zip(events, rescored, strict=True):
        assert new is not old
        assert new.model_dump(exclude={"score"}) == old.model_dump(exclude={"score"})
        assert scored(new).policy == "support@3"
    assert scored(rescored[0]).strength == pytest.approx(0.5, abs=1e-3)
    assert scored(events[0]).strength == pytest.approx(1.0 * 0.5 ** (1 / 24), abs=1e-3)


def test_rescore_under_the_same_policy_reproduces_the_recorded_scores(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    events = [e for e in _one_of_each(client, exposure) if e is not None]
    assert [e.score for e in sk.rescore(events)] == [e.score for e in events]


def test_rescore_works_on_events_read_back_from_json(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    from signalkit.events import read_jsonl

    events = [e for e in _one_of_each(client, exposure) if e is not None]
    lines = [e.to_json() for e in events]
    policy = sk.ScoringPolicy.from_toml('name = "v2"\nversion = 2\n')
    assert all(scored(e).policy == "v2@2" for e in sk.rescore(read_jsonl(lines), policy))


def test_rescore_uses_a_custom_scorer_and_falls_back_when_it_returns_none(
    client: sk.Client, exposure: sk.Exposure
) -> None:
    events = [e for e in _one_of_each(client, exposure) if e is not None]

    def only_actions(event: sk.Event, policy: sk.ScoringPolicy) -> sk.Score | None:
        if event.kind == "action":
            return sk.Score(strength=0.1, polarity=0.1, policy="mine@1")
        return None

    rescored = sk.rescore(events, sk.DEFAULT_POLICY, only_actions)
    for event in rescored:
        expected = "mine@1" if event.kind == "action" else "default@1"
        assert scored(event).policy == expected
