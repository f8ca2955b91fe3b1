"""Who a Starlette request is for by default: the signed-in user, the anonymous-id cookie.

What ``identify`` returns is checked by :func:`signalkit.web.identity_of`, as in the Django and
Flask adapters.
"""

from __future__ import annotations

import re

__all__ = ["user_id_of", "valid_cookie_id"]

_COOKIE_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


def user_id_of(user: object) -> str | None:
    """The id of an authenticated Starlette user (``scope["user"]``): ``identity``, else name."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    for attribute in ("identity", "display_name"):
        try:
            value = getattr(user, attribute, None)
        except NotImplementedError:  # starlette.authentication.BaseUser leaves both abstract
            continue
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def valid_cookie_id(value: str | None) -> bool:
    """Whether a cookie holds an id this middleware could have issued (16–64 URL-safe chars)."""
    return value is not None and _COOKIE_ID.fullmatch(value) is not None
