"""The delivery lanes' retry rules: status classes per profile, Retry-After, full-jitter backoff."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalkit import ConfigError, RetryPolicy
from signalkit._retry import (
    MAX_RETRY_AFTER_S,
    backoff_delay,
    classify_status,
    parse_retry_after,
    validate_retry_policy,
)

NOW = datetime(2026, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp()

# -- classify_status -----------------------------------------------------------------------------

# Written from DESIGN §7, independently of the implementation: (status, http, otlp).
KNOWN = [
    (200, "success", "success"),
    (201, "success", "success"),
    (202, "success", "success"),
    (204, "success", "success"),
    (299, "success", "success"),
    (301, "pause", "pause"),
    (302, "pause", "pause"),
    (307, "pause", "pause"),
    (308, "pause", "pause"),
    (400, "drop", "drop"),
    (401, "pause", "pause"),
    (403, "pause", "pause"),
    (404, "drop", "drop"),
    (408, "retry", "drop"),
    (409, "drop", "drop"),
    (413, "split", "split"),
    (422, "drop", "drop"),
    (429, "retry", "retry"),
    (499, "drop", "drop"),
    (500, "retry", "drop"),
    (501, "retry", "drop"),
    (502, "retry", "retry"),
    (503, "retry", "retry"),
    (504, "retry", "retry"),
    (505, "retry", "drop"),
    (599, "retry", "drop"),
    (100, "retry", "retry"),
    (101, "retry", "retry"),
    (199, "retry", "retry"),
    (0, "retry", "retry"),
    (600, "retry", "retry"),
    (999, "retry", "retry"),
]


@pytest.mark.parametrize(("status", "http", "otlp"), KNOWN)
def test_classify_status_follows_design_section_7(status: int, http: str, otlp: str) -> None:
    assert classify_status(status, "http") == http
    assert classify_status(status, "otlp") == otlp


def test_classify_status_otlp_retries_only_what_the_otlp_spec_calls_retryable() -> None:
    retried = {s for s in range(400, 600) if classify_status(s, "otlp") == "retry"}
    assert retried == {429, 502, 503, 504}


def test_classify_status_http_retries_408_429_and_every_5xx() -> None:
    retried = {s for s in range(400, 600) if classify_status(s, "http") == "retry"}
    assert retried == {408, 429, *range(500, 600)}


def test_classify_status_pauses_on_credentials_and_redirects_in_both_profiles() -> None:
    for profile in ("http", "otlp"):
        paused = {s for s in range(100, 600) if classify_status(s, profile) == "pause"}
        assert paused == {401, 403, *range(300, 400)}


def test_classify_status_rejects_an_unknown_profile() -> None:
    with pytest.raises(ValueError, match="profile"):
        classify_status(200, "grpc")  # type: ignore[arg-type]


# -- parse_retry_after ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("007", 7.0),
        ("1.5", 1.5),
        ("9" * 500, MAX_RETRY_AFTER_S),
    ],
)
def test_parse_retry_after_reads_delay_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "-1",
        "-0.5",
        "+5",
        "1e3",
        "0x10",
        "inf",
        "nan",
        "soon",
        "12 seconds",
        "1,5",
        "2026-11-06T08:49:37Z",
        "Sun, 06 Nov 2026 08:49:37",
        "Sun, 06 Nov 2026 08:49:37 +0200",
        "Sun, 31 Feb 2026 08:49:37 GMT",
        "Sun, 06 Nov 2026 25:49:37 GMT",
        "Sun, 06 Foo 2026 08:49:37 GMT",
        "x, 1 Jan 1 1:1:1",
        "\x00",
    ],
)
def test_parse_retry_after_ignores_garbage_and_negative_values(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_parse_retry_after_reads_an_imf_fixdate_as_seconds_from_now() -> None:
    when = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=90)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == 90.0
    assert parse_retry_after("Fri, 06 Nov 2026 08:51:37 GMT", now=NOW) == 120.0


def test_parse_retry_after_accepts_the_obsolete_rfc850_and_asctime_forms() -> None:
    assert parse_retry_after("Friday, 06-Nov-26 08:50:37 GMT", now=NOW) == 60.0
    assert parse_retry_after("Fri Nov  6 08:50:37 2026", now=NOW) == 60.0
    assert parse_retry_after("Fri Nov 16 08:49:37 2026", now=NOW) == 10 * 86400.0
    assert parse_retry_after("fri, 06 nov 2026 08:50:37 gmt", now=NOW) == 60.0


def test_parse_retry_after_reads_a_far_rfc850_year_as_the_past() -> None:
    # RFC 9110 §5.6.7: "99" seen in 2026 is 1999, not 2099 (more than 50 years ahead).
    assert parse_retry_after("Friday, 31-Dec-99 23:59:59 GMT", now=NOW) == 0.0
    assert parse_retry_after("Saturday, 06-Nov-77 08:49:37 GMT", now=NOW) == 0.0  # 1977
    assert parse_retry_after("Sunday, 06-Nov-39 08:49:37 GMT", now=NOW) == pytest.approx(
        datetime(2039, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp() - NOW
    )


def test_parse_retry_after_gives_zero_for_a_date_in_the_past() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=NOW) == 0.0
    assert parse_retry_after("Mon, 01 Jan 0001 00:00:00 GMT", now=NOW) == 0.0


def test_parse_retry_after_uses_the_clock_when_now_is_not_given() -> None:
    future = datetime.now(UTC) + timedelta(seconds=30)
    delay = parse_retry_after(format_datetime(future, usegmt=True))
    assert delay is not None
    assert 28.0 <= delay <= 30.0


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises_and_is_none_or_a_finite_delay(value: str) -> None:
    result = parse_retry_after(value, now=NOW)
    assert result is None or (math.isfinite(result) and 0.0 <= result <= MAX_RETRY_AFTER_S)


@given(st.integers(min_value=0, max_value=10**12))
def test_parse_retry_after_reads_every_non_negative_integer(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=NOW) == min(float(seconds), MAX_RETRY_AFTER_S)


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    )
)
def test_parse_retry_after_reads_any_imf_fixdate(when: datetime) -> None:
    when = when.replace(microsecond=0)
    expected = min(max(0.0, when.timestamp() - NOW), MAX_RETRY_AFTER_S)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == expected


# -- backoff_delay -------------------------------------------------------------------------------

policies = st.builds(
    RetryPolicy,
    jitter=st.sampled_from(["full", "equal"]),
    base_s=st.floats(min_value=0.001, max_value=100),
    cap_s=st.floats(min_value=0.001, max_value=1000),
    max_retry_after_s=st.floats(min_value=0.001, max_value=10_000),
)
retry_afters = st.none() | st.floats(min_value=0, max_value=1e6)


@given(
    attempt=st.integers(min_value=1, max_value=5000),
    policy=policies,
    retry_after=retry_afters,
    seed=st.integers(),
)
def test_backoff_delay_is_jittered_under_the_cap_and_never_below_retry_after(
    attempt: int, policy: RetryPolicy, retry_after: float | None, seed: int
) -> None:
    delay = backoff_delay(attempt, policy, retry_after, random.Random(seed))
    ceiling = min(policy.cap_s, policy.base_s * 2.0 ** min(attempt - 1, 1000))
    floor = 0.0 if retry_after is None else min(retry_after, policy.max_retry_after_s)
    assert math.isfinite(delay)
    assert delay >= floor
    assert delay <= max(ceiling, floor)
    if retry_after is None:
        assert 0.0 <= delay <= policy.cap_s
        if policy.jitter == "equal":
            assert delay >= ceiling / 2


def test_backoff_delay_doubles_its_ceiling_per_attempt_until_the_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=30.0, jitter="full")
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (60, 30.0)]:
        samples = [backoff_delay(attempt, policy, None, rng) for _ in range(2000)]
        assert max(samples) <= ceiling
        # full jitter: spread over the whole range, not bunched near the ceiling
        assert min(samples) < ceiling * 0.02
        assert max(samples) > ceiling * 0.98
        assert sum(samples) / len(samples) == pytest.approx(ceiling / 2, rel=0.1)


def test_backoff_delay_waits_at_least_retry_after_capped_by_the_policy() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=30.0, max_retry_after_s=300.0)
    rng = random.Random(1)
    assert all(backoff_delay(1, policy, 120.0, rng) == 120.0 for _ in range(100))
    assert backoff_delay(1, policy, 86400.0, rng) == 300.0
    assert 5.0 <= backoff_delay(10, policy, 5.0, rng) <= 30.0


def test_backoff_delay_ignores_a_zero_or_nan_retry_after() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=1.0)
    assert backoff_delay(1, policy, 0.0, random.Random(3)) <= 1.0
    assert backoff_delay(1, policy, math.nan, random.Random(3)) <= 1.0


def test_backoff_delay_is_reproducible_with_a_seeded_generator() -> None:
    policy = RetryPolicy()
    first = [backoff_delay(a, policy, None, random.Random(42)) for a in range(1, 10)]
    again = [backoff_delay(a, policy, None, random.Random(42)) for a in range(1, 10)]
    assert first == again


def test_backoff_delay_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(0, RetryPolicy(), None, random.Random())


# -- validate_retry_policy -----------------------------------------------------------------------


def test_validate_retry_policy_accepts_the_default_and_unlimited_policies() -> None:
    assert validate_retry_policy(RetryPolicy(), "x") == RetryPolicy()
    unlimited = RetryPolicy(max_attempts=None, max_elapsed_s=None)
    assert validate_retry_policy(unlimited, "x") is unlimited


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"base_s": 0}, "base_s"),
        ({"base_s": -1.0}, "base_s"),
        ({"base_s": math.inf}, "base_s"),
        ({"cap_s": math.nan}, "cap_s"),
        ({"base_s": 10.0, "cap_s": 1.0}, "cap_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"max_elapsed_s": 0.0}, "max_elapsed_s"),
        ({"max_retry_after_s": -5}, "max_retry_after_s"),
    ],
)
def test_validate_retry_policy_names_the_bad_field(policy: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"Owner\.retry_policy\.{field}:"):
        validate_retry_policy(RetryPolicy(**policy), "Owner.retry_policy")  # type: ignore[arg-type]


def test_validate_retry_policy_rejects_something_else() -> None:
    with pytest.raises(ConfigError, match=r"Owner\.retry_policy: expected a signalkit.RetryPolicy"):
        validate_retry_policy({"base_s": 1}, "Owner.retry_policy")


def test_equal_jitter_keeps_attempts_apart_but_within_the_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=10.0)  # the defaults' shape
    assert policy.jitter == "equal"
    rng = random.Random(11)
    for attempt, ceiling in [(1, 1.0), (3, 4.0), (5, 10.0), (40, 10.0)]:
        samples = [backoff_delay(attempt, policy, None, rng) for _ in range(2000)]
        assert ceiling / 2 <= min(samples) < ceiling * 0.52
        assert ceiling * 0.98 < max(samples) <= ceiling


def test_the_default_policy_makes_about_a_dozen_attempts_in_a_minute_of_outage() -> None:
    # RELIABILITY R3: at most 12 attempts in a 60 s outage, and a recovered sink found
    # within 10 s. Simulated over many outages with the lane's own backoff function.
    policy = RetryPolicy()
    rng = random.Random(3)
    counts = []
    for _ in range(500):
        elapsed, attempts = 0.0, 0
        while elapsed < 60.0:
            attempts += 1
            elapsed += backoff_delay(attempts, policy, None, rng)
        counts.append(attempts)
    assert max(counts) <= 13
    assert sum(counts) / len(counts) <= 12
    assert policy.cap_s <= 10.0
