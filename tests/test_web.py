"""signalkit.web: what the framework adapters share (identify's answer, the throttled log, the
bounded body read, the rate-limit key)."""

from __future__ import annotations

import io
import logging

import pytest

import signalkit as sk
from signalkit import web
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


def test_read_at_most_stops_at_the_size_even_from_a_stream_that_returns_little_at_a_time() -> None:
    data = io.BytesIO(b"x" * 100)
    asked: list[int] = []

    def trickle(n: int) -> bytes:  # like a socket: never more than 7 bytes per read
        asked.append(n)
        return data.read(min(n, 7))

    assert web.read_at_most(trickle, 30) == b"x" * 30
    assert max(asked) <= 30  # never asked for more than was left
    assert data.tell() == 30  # and nothing past the limit was read
    assert web.read_at_most(io.BytesIO(b"short").read, 30) == b"short"  # the end comes first


def test_rate_key_is_the_session_then_the_user_then_the_address() -> None:
    both = sk.Subject(user_id="u-1", session_id="s-1")
    assert web.rate_key(both, "10.0.0.1") == "session_id:s-1"
    assert web.rate_key(sk.Subject(user_id="u-1"), "10.0.0.1") == "user_id:u-1"
    assert web.rate_key(None, "10.0.0.1") == "addr:10.0.0.1"
    assert web.rate_key(sk.Subject(), None) == "addr:"
