"""URL patterns for the relay: ``path("", include("signalkit_django.urls"))``.

``POST signals`` takes a page's signals (:func:`~signalkit_django.relay_view`);
``GET signals.js`` serves the page script (:func:`~signalkit_django.script_view`).
Mount them under a prefix with ``path("t/", include(...))``; the page script's
``data-endpoint`` must then say ``/t/signals``.
"""

from django.urls import path

from ._views import relay_view, script_view

app_name = "signalkit"

urlpatterns = [
    path("signals", relay_view, name="relay"),
    path("signals.js", script_view, name="script"),
]
