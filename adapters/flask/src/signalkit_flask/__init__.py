"""signalkit-flask: the request's user on every signal, and the browser relay routes.

``Signalkit(app, client, identify=...)`` runs each request inside :func:`signalkit.context`
with the ids ``identify`` returns (and Flask-Login's current user by default), so exposures
and signals recorded while handling it carry them; and it registers a blueprint with
``POST /signals`` (the :class:`signalkit.relay.Relay` pages post to) and ``GET /signals.js``
(the page script).
"""

from ._extension import Identify, Signalkit
from ._version import __version__

__all__ = ["Identify", "Signalkit", "__version__"]
