"""instrument() / uninstrument() for an ``anthropic.Anthropic`` or ``anthropic.AsyncAnthropic``
client (and the Bedrock and Vertex AI clients, which share their shape)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, TypeVar

from signalkit import Client, ConfigError, Exposure, _genai, _stainless

from ._read import read_event, read_message

__all__ = [
    "INSTALL_HINT",
    "SdkNotInstalled",
    "exposure_of",
    "instrument",
    "is_instrumented",
    "uninstrument",
]

INSTALL_HINT = "pip install 'signalkit-anthropic[anthropic]'  (or: pip install anthropic)"

C = TypeVar("C")

_MESSAGES = _stainless.Route("chat", read_message, read_event)
# beta.messages posts to /v1/messages in current SDKs, to the second path in older ones (0.60)
_ROUTES = {"/v1/messages": _MESSAGES, "/v1/messages?beta=true": _MESSAGES}

# The OpenTelemetry provider name of each client class that is not Anthropic's own API.
_PROVIDERS = {
    "AnthropicBedrock": "aws.bedrock",
    "AsyncAnthropicBedrock": "aws.bedrock",
    "AnthropicVertex": "gcp.vertex_ai",
    "AsyncAnthropicVertex": "gcp.vertex_ai",
}


class SdkNotInstalled(ConfigError):
    """The ``anthropic`` package is not installed: ``pip install
    'signalkit-anthropic[anthropic]'``.

    Like sentry_sdk's ``DidNotEnable``: catch it to run without this instrumentation rather
    than without the application."""


def _sdk() -> ModuleType:
    try:
        return importlib.import_module("anthropic")
    except ImportError as exc:
        raise SdkNotInstalled(
            f"signalkit-anthropic needs the anthropic SDK: {INSTALL_HINT}"
        ) from exc


def _resources(anthropic_client: Any) -> Sequence[Any]:
    found = [anthropic_client.messages]
    beta = getattr(anthropic_client, "beta", None)  # beta.messages: the same API, beta features
    beta_messages = getattr(beta, "messages", None)
    if beta_messages is not None:
        found.append(beta_messages)
    return found


def _is_client(sdk: ModuleType, obj: object) -> bool:
    base = getattr(getattr(sdk, "_base_client", None), "BaseClient", None)
    known = (sdk.Anthropic, sdk.AsyncAnthropic) + ((base,) if isinstance(base, type) else ())
    return isinstance(obj, known) and hasattr(obj, "messages")


def instrument(
    anthropic_client: C,
    *,
    surface: str,
    client: Client | None = None,
    model_variant: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    digest: bool = False,
    capture_output: bool = False,
) -> C:
    """Record every message ``anthropic_client`` creates as an exposure; return the same client.

    Observes ``messages.create`` (streamed or not), ``messages.stream`` and
    ``messages.parse``, and the same on ``beta.messages``, sync and async, on this client
    instance and the copies it makes (``with_options``). What they return is returned
    unchanged. A failed call records nothing; a stream is recorded when it ends, fails or is
    closed, if it showed a chunk. Calling it again replaces the settings.

    ``surface`` is where the output is shown (``reply-draft``). ``client`` is the signalkit
    client (default: the default client, looked up at each call). ``model_variant`` tags
    the model reference (an A/B arm, a prompt version). ``attributes`` are added to every
    exposure. ``digest=True`` adds the SHA-256 of the output text; ``capture_output=True``
    adds the text itself (cut to 1,024 characters) — neither is recorded otherwise.
    Raises :class:`signalkit.ConfigError` naming a bad argument, :class:`SdkNotInstalled`
    without the ``anthropic`` package.
    """
    sdk = _sdk()
    if not _is_client(sdk, anthropic_client):
        raise ConfigError(
            "instrument(anthropic_client): expected an anthropic.Anthropic or "
            f"anthropic.AsyncAnthropic client, got {type(anthropic_client).__name__}"
        )
    settings = _genai.settings(
        "signalkit_anthropic.instrument",
        client=client,
        surface=surface,
        provider=_PROVIDERS.get(type(anthropic_client).__name__, "anthropic"),
        model_variant=model_variant,
        attributes=attributes,
        digest=digest,
        capture_output=capture_output,
    )
    try:
        _stainless.instrument(anthropic_client, settings, routes=_ROUTES, resources=_resources)
    except (AttributeError, TypeError) as exc:
        raise ConfigError(
            f"signalkit_anthropic.instrument: this anthropic version ({sdk.__version__}) has "
            f"an unexpected client shape ({exc}); please report it"
        ) from exc
    return anthropic_client


def uninstrument(anthropic_client: object) -> bool:
    """Stop recording ``anthropic_client``'s messages and restore its methods.

    Returns False if it was not instrumented. Copies made from it stay instrumented until
    uninstrumented themselves."""
    return _stainless.uninstrument(anthropic_client)


def is_instrumented(anthropic_client: object) -> bool:
    """Whether :func:`instrument` is in effect on ``anthropic_client``."""
    return _stainless.is_instrumented(anthropic_client)


def exposure_of(response: object) -> Exposure | None:
    """The exposure recorded for a ``Message``, or opened for a stream (the ``Stream`` from
    ``create(stream=True)``, or the ``MessageStream`` a ``messages.stream()`` block gave),
    while that object lives; None if unknown."""
    found = _genai.exposure_of(response)
    if found is None:
        raw = getattr(response, "_raw_stream", None)  # MessageStream wraps the raw stream
        if raw is not None:
            found = _genai.exposure_of(raw)
    return found
