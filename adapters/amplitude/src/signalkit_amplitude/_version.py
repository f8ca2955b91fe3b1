"""The version of signalkit-amplitude (also sent as each event's ``library``)."""

__version__ = "0.1.0"
