"""The page script, its ETag, and conditional-GET matching."""

from __future__ import annotations

import hashlib

from signalkit.relay import relay_script

__all__ = ["CACHE_CONTROL", "CONTENT_TYPE", "ETAG", "SCRIPT", "not_modified"]

SCRIPT: bytes = relay_script().encode("utf-8")
"""``relay.js`` as served."""

ETAG: str = '"' + hashlib.sha256(SCRIPT).hexdigest()[:32] + '"'
"""A strong ETag of the script: it changes exactly when the installed signalkit's script does."""

CONTENT_TYPE = "text/javascript; charset=utf-8"
CACHE_CONTROL = "public, max-age=3600"


def not_modified(if_none_match: str | None) -> bool:
    """Whether an ``If-None-Match`` header names the script's current ETag (or ``*``)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == ETAG:
            return True
    return False
