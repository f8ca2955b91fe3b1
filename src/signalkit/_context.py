"""Context variables: the exposure just recorded, and the request's subject."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from .events import Subject

if TYPE_CHECKING:
    from ._instrument import Exposure

__all__ = ["context", "current_exposure", "current_subject"]

_exposure: ContextVar[Exposure | None] = ContextVar("signalkit_exposure", default=None)
_subject: ContextVar[Subject | None] = ContextVar("signalkit_subject", default=None)
_NO_SUBJECT = Subject()
"""The subject of an exposure recorded outside any :func:`context` and without ids."""


def current_exposure() -> Exposure | None:
    """The exposure most recently opened or recorded in this context (thread, task), if any."""
    return _exposure.get()


def current_subject() -> Subject | None:
    """The subject set by :func:`context` (or a web-framework adapter) for this request."""
    return _subject.get()


@contextmanager
def context(
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    session_id: str | None = None,
    tenant_id: str | None = None,
) -> Iterator[Subject]:
    """Set who the current request is for; exposures and signals recorded inside use it.

    Web-framework adapters call this per request. Values not given are inherited from an
    enclosing ``context()``. Inside the block, :func:`current_exposure` starts empty, so a
    worker thread reused across requests never sees the previous request's exposure.
    """
    outer = _subject.get() or Subject()
    subject = Subject(
        user_id=user_id if user_id is not None else outer.user_id,
        anonymous_id=anonymous_id if anonymous_id is not None else outer.anonymous_id,
        session_id=session_id if session_id is not None else outer.session_id,
        tenant_id=tenant_id if tenant_id is not None else outer.tenant_id,
    )
    token = _subject.set(subject)
    exposure_token = _exposure.set(None)  # a new request starts with no current exposure
    try:
        yield subject
    finally:
        _exposure.reset(exposure_token)
        _subject.reset(token)
