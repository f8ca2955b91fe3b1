"""signalkit → Amplitude: deliver scored user-feedback signals as Amplitude events.

Two exporters, one mapping (:func:`to_amplitude_event`, see the README's table):

- :class:`AmplitudeExporter` posts batches to Amplitude's HTTP V2 API (or the Batch API)
  itself, with signalkit's retries, splitting, spool and byte-identical resends. It needs no
  Amplitude package.
- :class:`AmplitudeSdkExporter` hands each event to the application's own
  ``amplitude.Amplitude`` client (``pip install 'signalkit-amplitude[sdk]'``).

::

    import signalkit as sk
    from signalkit_amplitude import AmplitudeExporter

    client = sk.Client("support-assistant", exporters=[AmplitudeExporter(AMPLITUDE_API_KEY)])
"""

from ._exporter import AmplitudeExporter
from ._mapping import to_amplitude_event
from ._sdk import AmplitudeSdkExporter
from ._version import __version__

__all__ = ["AmplitudeExporter", "AmplitudeSdkExporter", "__version__", "to_amplitude_event"]
