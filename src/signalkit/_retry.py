"""Retry decisions for the delivery lanes: what an HTTP status means, how long to wait.

Pure functions, no I/O and no clock unless given one, so each rule is tested alone:

- :func:`classify_status` maps an HTTP status to what a lane does with the batch, per exporter
  profile (DESIGN §7);
- :func:`parse_retry_after` reads a ``Retry-After`` header (RFC 9110 §10.2.3);
- :func:`backoff_delay` is full-jitter exponential backoff that never undercuts Retry-After;
- :func:`validate_retry_policy` checks a :class:`RetryPolicy` when an exporter is built.
"""

from __future__ import annotations

import math
import random
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TypeAlias

from ._errors import ConfigError

if TYPE_CHECKING:  # at run time it is imported where needed: exporters import this module
    from .exporters.base import RetryPolicy

__all__ = [
    "Profile",
    "StatusClass",
    "backoff_delay",
    "classify_status",
    "parse_retry_after",
    "validate_retry_policy",
]

Profile: TypeAlias = Literal["http", "otlp"]
"""Which retry rules apply: ``http`` (HttpExporter and adapters) or ``otlp`` (the OTLP spec)."""

StatusClass: TypeAlias = Literal["success", "retry", "split", "pause", "drop"]
"""What a lane does with a batch after a response: done; retry later; split in halves (a single
event: drop it as ``too_large``); pause the exporter keeping the data; drop the batch."""

_OTLP_RETRYABLE = frozenset({429, 502, 503, 504})

MAX_RETRY_AFTER_S = 1e9
"""Largest delay :func:`parse_retry_after` returns (about 31 years): absurd values stay finite.
The lane caps it again at ``RetryPolicy.max_retry_after_s``."""


def classify_status(status: int, profile: Profile) -> StatusClass:
    """What an HTTP response status means for the batch that got it.

    Both profiles: 2xx ``success``; 413 ``split``; 401 and 403 ``pause`` (credentials need a
    person: keep the data); other 4xx ``drop`` (the server refused this data for good).
    ``http``: 408, 429 and every 5xx ``retry``. ``otlp``: only 429, 502, 503 and 504 ``retry``,
    as the OTLP specification requires; 408 and other 5xx ``drop``.

    Statuses DESIGN §7 leaves open, decided the same way in both profiles:

    - 3xx ``pause``: redirects are not followed (a redirected POST may turn into a GET or carry
      the credentials to another host), and a redirecting endpoint is a configuration mistake
      that repeats for every batch. Dropping would lose everything until someone notices;
      pausing keeps the data and warns, like 401/403.
    - 1xx as a final status, and anything outside 100–599, ``retry``: the server never gave a
      final answer, which is a broken exchange like a dropped connection (retryable in both
      profiles); the retry budget bounds it. HTTP clients consume 100 Continue and other
      interim responses themselves, so in practice this is only 101 or a broken server.
    """
    if profile not in ("http", "otlp"):
        raise ValueError(f"profile: expected 'http' or 'otlp', got {profile!r}")
    if status < 200 or status > 599:
        return "retry"
    if status < 300:
        return "success"
    if status < 400 or status in (401, 403):
        return "pause"
    if status == 413:
        return "split"
    if profile == "otlp":
        return "retry" if status in _OTLP_RETRYABLE else "drop"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "drop"


# -- Retry-After ---------------------------------------------------------------------------------

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MONTHS = {
    month: number
    for number, month in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)"
_LONG_DAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_MONTH = r"(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
# RFC 9110 §5.6.7: a recipient MUST accept all three forms. Names are matched ignoring case.
_IMF_FIXDATE = re.compile(
    rf"{_DAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT", re.IGNORECASE
)
_RFC850_DATE = re.compile(
    rf"{_LONG_DAY}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT", re.IGNORECASE
)
_ASCTIME_DATE = re.compile(
    rf"{_DAY} {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} (?P<year>[0-9]{{4}})", re.IGNORECASE
)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` if there is none to obey.

    Accepts delay-seconds (``120``; a decimal fraction such as ``1.5`` is tolerated) and
    HTTP-dates in the three forms RFC 9110 requires a recipient to accept (IMF-fixdate
    ``Sun, 06 Nov 1994 08:49:37 GMT``, obsolete RFC 850 and asctime). A date in the past gives
    ``0.0``; a negative number, an empty value or anything else gives ``None`` (the header is
    ignored). ``now`` is the current Unix time (default :func:`time.time`). The result is at
    most :data:`MAX_RETRY_AFTER_S`; capping it to a policy is the caller's job.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER_S)
    when = _parse_http_date(text, time.time() if now is None else now)
    if when is None:
        return None
    current = time.time() if now is None else now
    return min(max(0.0, when - current), MAX_RETRY_AFTER_S)


def _parse_http_date(text: str, now: float) -> float | None:
    for pattern in (_IMF_FIXDATE, _RFC850_DATE, _ASCTIME_DATE):
        match = pattern.fullmatch(text)
        if match is not None:
            break
    else:
        return None
    year = int(match["year"])
    if pattern is _RFC850_DATE:
        # RFC 9110: a two-digit year that looks more than 50 years ahead is in the past.
        this_year = datetime.fromtimestamp(now, UTC).year
        year += this_year - this_year % 100
        if year > this_year + 50:
            year -= 100
    try:
        moment = datetime(
            year,
            _MONTHS[match["month"].lower()],
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            min(int(match["second"]), 59),  # a leap second: one second early is close enough
            tzinfo=UTC,
        )
    except ValueError:  # 31 Feb, hour 25...
        return None
    return moment.timestamp()


# -- backoff -------------------------------------------------------------------------------------


def backoff_delay(
    attempt: int, policy: RetryPolicy, retry_after_s: float | None, rng: random.Random
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first failure).

    With ``c = min(policy.cap_s, policy.base_s * 2**(attempt - 1))``: ``uniform(c / 2, c)``
    (equal jitter, the default) or ``uniform(0, c)`` (``policy.jitter == "full"``), so clients
    that failed together do not retry together; but never less than the server's Retry-After,
    itself capped at ``policy.max_retry_after_s`` (so a Retry-After may exceed ``cap_s``).
    ``rng`` is the caller's generator: seed it in tests.
    """
    if attempt < 1:
        raise ValueError(f"attempt: must be >= 1, got {attempt}")
    # 2.0 ** 1000 is finite; a larger exponent would overflow, and min() with the cap wins anyway.
    ceiling = max(0.0, min(policy.cap_s, policy.base_s * 2.0 ** min(attempt - 1, 1000)))
    low = ceiling / 2 if policy.jitter == "equal" else 0.0
    delay = rng.uniform(low, ceiling)
    if retry_after_s is not None and retry_after_s > 0:  # NaN compares False: ignored
        delay = max(delay, min(retry_after_s, policy.max_retry_after_s))
    return delay


def validate_retry_policy(policy: object, owner: str) -> RetryPolicy:
    """Return ``policy`` if it is a usable :class:`RetryPolicy`, else raise :class:`ConfigError`
    naming the field (``owner`` is the argument, e.g. ``HttpExporter.retry_policy``)."""
    from .exporters.base import RetryPolicy

    if not isinstance(policy, RetryPolicy):
        raise ConfigError(f"{owner}: expected a signalkit.RetryPolicy, got {type(policy).__name__}")

    def positive(field: str, value: object, *, allow_none: bool = False) -> None:
        if value is None and allow_none:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigError(f"{owner}.{field}: must be a finite number > 0, got {value!r}")

    positive("base_s", policy.base_s)
    positive("cap_s", policy.cap_s)
    positive("max_retry_after_s", policy.max_retry_after_s)
    positive("max_elapsed_s", policy.max_elapsed_s, allow_none=True)
    if policy.cap_s < policy.base_s:
        raise ConfigError(f"{owner}.cap_s: must be >= base_s ({policy.base_s}), got {policy.cap_s}")
    attempts = policy.max_attempts
    if attempts is not None and (
        isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
    ):
        raise ConfigError(f"{owner}.max_attempts: must be an int >= 1 or None, got {attempts!r}")
    return policy
