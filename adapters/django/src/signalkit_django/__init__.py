"""signalkit-django: the request's user and session on every signal, and the browser relay.

- :class:`SignalkitMiddleware` runs each request inside :func:`signalkit.context` with the
  authenticated user's id and the session key (and whatever ``SIGNALKIT["IDENTIFY"]`` adds),
  so exposures and signals recorded while handling it carry them.
- :func:`relay_view` / :func:`script_view` (``include("signalkit_django.urls")``) mount
  :class:`signalkit.relay.Relay`: ``POST /signals`` for pages' signals, ``GET /signals.js``
  for the page script.

Configure with ``SIGNALKIT = {"IDENTIFY": ..., "CLIENT": ..., "RELAY": {...}}`` in settings.
"""

from ._middleware import SignalkitMiddleware, identify_failures
from ._version import __version__
from ._views import relay_view, script_view

__all__ = [
    "SignalkitMiddleware",
    "__version__",
    "identify_failures",
    "relay_view",
    "script_view",
]
