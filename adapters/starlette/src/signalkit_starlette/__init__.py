"""signalkit for Starlette and FastAPI.

:class:`SignalkitMiddleware` runs each request inside :func:`signalkit.context` with the
request's user, anonymous and session ids; :func:`relay_routes` mounts the browser relay
(``POST /signals``) and its page script (``GET /signals.js``).
"""

from ._middleware import SignalkitMiddleware, identify_failures
from ._routes import default_rate_key, relay_routes
from ._version import __version__

__all__ = [
    "SignalkitMiddleware",
    "__version__",
    "default_rate_key",
    "identify_failures",
    "relay_routes",
]
