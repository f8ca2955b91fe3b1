"""signalkit → Mixpanel: deliver scored user-feedback signals as Mixpanel events.

Two exporters, one mapping (:func:`to_mixpanel_event`, see the README's table):

- :class:`MixpanelExporter` posts batches to Mixpanel's Import API itself, with signalkit's
  retries, splitting, spool and byte-identical resends. It needs no Mixpanel package.
- :class:`MixpanelSdkExporter` hands each event to the application's own ``mixpanel.Mixpanel``
  client (``pip install 'signalkit-mixpanel[sdk]'``).

::

    import signalkit as sk
    from signalkit_mixpanel import MixpanelExporter

    client = sk.Client("support-assistant", exporters=[MixpanelExporter(MIXPANEL_TOKEN)])
"""

from ._exporter import MixpanelExporter
from ._mapping import to_mixpanel_event
from ._sdk import MixpanelSdkExporter

__version__ = "0.1.0"

__all__ = ["MixpanelExporter", "MixpanelSdkExporter", "__version__", "to_mixpanel_event"]
