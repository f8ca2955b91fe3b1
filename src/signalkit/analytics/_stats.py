"""The report's statistics: 95% intervals for rates, means and their differences.

Pure functions of counts and sums, so each can be checked by hand (``docs/report.md`` gives the
formulas). z is the two-sided 95% normal quantile.
"""

from __future__ import annotations

import math

__all__ = ["Z95", "mean_ci", "mean_diff_ci", "newcombe_diff_ci", "wilson_ci"]

Z95 = 1.959963984540054


def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``k/n``; ``None`` when ``n == 0``."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_diff_ci(
    k1: int, n1: int, k2: int, n2: int, z: float = Z95
) -> tuple[float, float] | None:
    """Interval of ``k1/n1 - k2/n2`` by Newcombe's hybrid score method (his method 10).

    Built from the two Wilson intervals; it keeps its coverage for small counts and rates
    near 0 or 1, where the plain Wald interval does not.
    """
    a, b = wilson_ci(k1, n1, z), wilson_ci(k2, n2, z)
    if a is None or b is None:
        return None
    p1, p2 = k1 / n1, k2 / n2
    d = p1 - p2
    lower = d - math.sqrt((p1 - a[0]) ** 2 + (b[1] - p2) ** 2)
    upper = d + math.sqrt((a[1] - p1) ** 2 + (p2 - b[0]) ** 2)
    return (lower, upper)


def _var(total: float, squares: float, n: int) -> float | None:
    if n < 2:
        return None
    return max(0.0, (squares - total * total / n) / (n - 1))


def mean_ci(
    total: float, squares: float, n: int, z: float = Z95
) -> tuple[float, tuple[float, float] | None] | None:
    """Mean of ``n`` values from their sum and sum of squares, with a normal 95% interval.

    ``None`` when ``n == 0``; the interval is ``None`` below two values.
    """
    if n <= 0:
        return None
    mean = total / n
    var = _var(total, squares, n)
    if var is None:
        return (mean, None)
    half = z * math.sqrt(var / n)
    return (mean, (mean - half, mean + half))


def mean_diff_ci(
    a: tuple[float, float, int], b: tuple[float, float, int], z: float = Z95
) -> tuple[float, float] | None:
    """Interval of ``mean(a) - mean(b)`` (Welch's unequal variances, normal quantile).

    Each argument is ``(sum, sum of squares, n)``; ``None`` when either has under two values.
    """
    va, vb = _var(*a), _var(*b)
    if va is None or vb is None:
        return None
    d = a[0] / a[2] - b[0] / b[2]
    half = z * math.sqrt(va / a[2] + vb / b[2])
    return (d - half, d + half)
