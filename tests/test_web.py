"""signalkit.web: what the framework adapters share (identify's answer, the throttled log)."""

from __future__ import annotations

import logging

import pytest

import signalkit as sk
from signalkit.web import ThrottledLog, identity_of


def test_identify_may_answer_a_mapping_a_subject_or_none() -> None:
    assert identity_of(None) == {}
    assert identity_of({"user_id": 42, "session_id": None}) == {"user_id": "42"}
    assert identity_of(sk.Subject(user_id="u", tenant_id="t")) == {"user_id": "u", "tenant_id": "t"}


@pytest.mark.parametrize(
    ("answer", "error", "named"),
    [
        ("u-1", TypeError, "str"),
        ({"user": "u"}, ValueError, "'user'"),
        ({"user_id": True}, TypeError, "user_id=bool"),
        ({"user_id": 1.5}, TypeError, "user_id=float"),
    ],
)
def test_a_wrong_answer_is_refused_naming_the_field(
    answer: object, error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        identity_of(answer)


def test_a_recurring_failure_is_logged_once_per_interval_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ThrottledLog(logging.getLogger("signalkit.test_web"), interval_s=3600)
    for _ in range(3):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("identify failed")
    assert log.count == 3
    assert [r.getMessage() for r in caplog.records] == ["identify failed"]
    assert caplog.records[0].exc_info is not None
    log._last = -1e9  # the interval has passed
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("identify failed")
    assert caplog.records[-1].getMessage() == "identify failed (and 2 more since the last message)"
