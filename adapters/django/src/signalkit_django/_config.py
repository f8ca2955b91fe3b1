"""The ``SIGNALKIT`` setting, read once and again whenever a test overrides it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.utils.module_loading import import_string

from signalkit import Client
from signalkit.relay import Relay

__all__ = ["KEYS", "Config", "config", "relay"]

KEYS = frozenset({"IDENTIFY", "CLIENT", "RELAY"})
"""The keys ``settings.SIGNALKIT`` may have."""


@dataclass(frozen=True)
class Config:
    """``settings.SIGNALKIT``, checked and with its dotted paths imported."""

    identify: Callable[[HttpRequest], object] | None = None
    client: Client | None = None
    relay_options: Mapping[str, Any] = field(default_factory=dict)


_lock = threading.Lock()
_config: Config | None = None
_relay: Relay | None = None


def config() -> Config:
    """The current configuration (read from settings on first use)."""
    global _config
    current = _config
    if current is None:
        with _lock:
            if _config is None:
                _config = _read(getattr(settings, "SIGNALKIT", None) or {})
            current = _config
    return current


def relay() -> Relay:
    """The process's relay, built from ``SIGNALKIT["RELAY"]`` and ``SIGNALKIT["CLIENT"]``."""
    global _relay
    current = _relay
    if current is None:
        conf = config()
        with _lock:
            if _relay is None:
                try:
                    _relay = Relay(conf.client, **conf.relay_options)
                except (TypeError, ValueError) as exc:  # ConfigError is a ValueError
                    raise ImproperlyConfigured(f"SIGNALKIT['RELAY']: {exc}") from exc
            current = _relay
    return current


def _read(value: object) -> Config:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"SIGNALKIT must be a dict, not {type(value).__name__}")
    unknown = set(value) - KEYS
    if unknown:
        raise ImproperlyConfigured(
            f"SIGNALKIT: unknown key(s) {sorted(map(str, unknown))}; known: {sorted(KEYS)}"
        )
    identify = _load(value.get("IDENTIFY"), "IDENTIFY")
    if identify is not None and not callable(identify):
        raise ImproperlyConfigured("SIGNALKIT['IDENTIFY'] must be a callable or its dotted path")
    client = _load(value.get("CLIENT"), "CLIENT")
    if client is not None and not isinstance(client, Client):
        raise ImproperlyConfigured(
            f"SIGNALKIT['CLIENT'] must be a signalkit.Client or its dotted path, "
            f"not {type(client).__name__}"
        )
    options = value.get("RELAY") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured("SIGNALKIT['RELAY'] must be a dict of Relay options")
    return Config(identify, client, dict(options))


def _load(value: object, key: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError as exc:
        raise ImproperlyConfigured(f"SIGNALKIT[{key!r}]: cannot import {value!r}: {exc}") from exc


def _reset(*, setting: str, **_: object) -> None:
    global _config, _relay
    if setting == "SIGNALKIT":
        with _lock:
            _config = _relay = None


setting_changed.connect(_reset, dispatch_uid="signalkit_django.reset")
