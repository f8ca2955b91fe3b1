"""signalkit.testing: users test their own instrumentation with the pytest fixture."""

from __future__ import annotations

import textwrap

import pytest

import signalkit as sk
from signalkit.testing import TEST_SECRET, capture_signals

pytest_plugins = ["pytester"]


@sk.recommendation("reply-draft", model="reply-drafter", model_version="v2")
def draft_reply(ticket: str) -> str:
    return f"About {ticket}: your refund is on its way."


def test_the_fixture_captures_what_module_level_calls_record(signalkit_events) -> None:  # type: ignore[no-untyped-def]
    reply = draft_reply("refund")
    assert reply.startswith("About refund")
    sk.action(sk.current_exposure().token, "accepted")  # type: ignore[union-attr]
    assert signalkit_events.kinds() == ["exposure", "action"]
    exposure = signalkit_events.find("exposure", surface="reply-draft")
    assert exposure.model.version == "v2"
    assert signalkit_events.last.score.polarity > 0
    assert len(signalkit_events) == 2


def test_the_fixture_client_is_strict(signalkit_events) -> None:  # type: ignore[no-untyped-def]
    draft_reply("x")
    with pytest.raises(sk.InvalidEvent, match=r"attributes\.tags"):
        sk.action(sk.current_exposure(), attributes={"tags": ["a"]})  # type: ignore[arg-type,dict-item]


def test_the_fixture_restores_the_previous_default_client(pytester: pytest.Pytester) -> None:
    before = sk._default
    pytester.makepyfile(
        textwrap.dedent(
            """
            import signalkit as sk

            def test_one(signalkit_events):
                sk.outcome(sk.exposure("s").id, "purchase", value=3.0)
                assert signalkit_events.of_kind("outcome")[0].value == 3.0
                assert signalkit_events.stats.recorded == 1
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=1)
    assert sk._default is before


def test_a_users_test_file_from_the_docs_passes(pytester: pytest.Pytester) -> None:
    # the example of docs/testing.md, run as a user would run it
    pytester.makepyfile(
        textwrap.dedent(
            """
            import pytest
            import signalkit as sk

            @sk.recommendation("reply-draft", model="reply-drafter", model_version="v2")
            def draft_reply(ticket: str) -> str:
                return "Your refund is on its way."

            def test_an_accepted_draft_is_a_positive_signal(signalkit_events):
                draft_reply("where is my refund?")
                sk.action(sk.current_exposure().token, "accepted")
                assert signalkit_events.kinds() == ["exposure", "action"]
                exposure = signalkit_events.find("exposure", surface="reply-draft")
                assert exposure.model.version == "v2"
                assert signalkit_events.last.score.polarity > 0

            def test_bad_instrumentation_fails_loudly(signalkit_events):
                with pytest.raises(sk.InvalidEvent, match="attributes.tags"):
                    sk.action(sk.current_exposure() or "not-an-id", attributes={"tags": ["a"]})

            def test_a_wrong_assertion_fails(signalkit_events):
                draft_reply("x")
                assert signalkit_events.kinds() == ["action"]
            """
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2, failed=1)


def test_capture_signals_works_on_any_client() -> None:
    memory = sk.MemoryExporter()
    client = sk.Client("svc", exporters=[memory], secret=TEST_SECRET)
    try:
        with client.exposure("s") as exp:
            pass
        with capture_signals(client) as events:
            client.outcome(exp.id, "purchase", value=30.0, success=True)
        client.action(exp, "clicked")  # after the block: not captured
        assert events.kinds() == ["outcome"]
        assert events.last.delay_ms is not None
        with pytest.raises(AssertionError, match="expected exactly one action"):
            events.find("action")
        assert client.processors == []
        client.flush(2)
        assert [e.kind for e in memory.events] == ["exposure", "outcome", "action"]
    finally:
        client.shutdown(2)
