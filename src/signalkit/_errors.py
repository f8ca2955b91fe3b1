"""Errors a user of signalkit can meet. Each names the field or the reason and the fix."""

from __future__ import annotations

__all__ = ["ConfigError", "InvalidEvent", "InvalidToken", "SignalkitError"]


class SignalkitError(Exception):
    """Base class of every error signalkit raises on purpose."""


class ConfigError(SignalkitError, ValueError):
    """A client, policy or exporter setting is invalid; raised when the client is built."""


class InvalidEvent(SignalkitError, ValueError):
    """A recording call got an argument it cannot record.

    ``field`` names the argument, ``reason`` is a short machine-readable tag
    (the key under which the rejection is counted in ``client.stats``).
    """

    def __init__(self, field: str, message: str, reason: str = "invalid") -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {message}")


class InvalidToken(SignalkitError, ValueError):
    """An exposure token failed verification.

    ``reason`` is one of ``malformed``, ``unsigned``, ``unknown_key``, ``tampered``,
    ``expired``, ``future``. The message never contains a secret.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.field = "token"
        super().__init__(f"token {reason}: {message}")
