"""instrument() / uninstrument() for an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, TypeVar

from signalkit import Client, ConfigError, Exposure, _genai, _stainless

from ._read import read_chat, read_chat_chunk, read_response, read_response_event

__all__ = [
    "INSTALL_HINT",
    "SdkNotInstalled",
    "exposure_of",
    "instrument",
    "is_instrumented",
    "uninstrument",
]

INSTALL_HINT = "pip install 'signalkit-openai[openai]'  (or: pip install openai)"

C = TypeVar("C")

_ROUTES = {
    "/chat/completions": _stainless.Route("chat", read_chat, read_chat_chunk),
    "/responses": _stainless.Route("chat", read_response, read_response_event),
}


class SdkNotInstalled(ConfigError):
    """The ``openai`` package is not installed: ``pip install 'signalkit-openai[openai]'``.

    Like sentry_sdk's ``DidNotEnable``: catch it to run without this instrumentation rather
    than without the application."""


def _sdk() -> ModuleType:
    try:
        return importlib.import_module("openai")
    except ImportError as exc:
        raise SdkNotInstalled(f"signalkit-openai needs the openai SDK: {INSTALL_HINT}") from exc


def _resources(openai_client: Any) -> Sequence[Any]:
    return (openai_client.chat.completions, openai_client.responses)


def _provider(sdk: ModuleType, openai_client: Any) -> str:
    azure = tuple(
        getattr(sdk, name) for name in ("AzureOpenAI", "AsyncAzureOpenAI") if hasattr(sdk, name)
    )
    return "azure.ai.openai" if azure and isinstance(openai_client, azure) else "openai"


def instrument(
    openai_client: C,
    *,
    surface: str,
    client: Client | None = None,
    model_variant: str | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    digest: bool = False,
    capture_output: bool = False,
) -> C:
    """Record every completion ``openai_client`` makes as an exposure; return the same client.

    Observes ``chat.completions.create`` / ``parse`` / ``stream`` and ``responses.create`` /
    ``parse`` / ``stream``, sync and async, streamed or not, on this client instance and the
    copies it makes (``with_options``). What they return is returned unchanged. A failed
    call records nothing; a stream is recorded when it ends, fails or is closed, if it
    showed a chunk. Calling it again replaces the settings.

    ``surface`` is where the output is shown (``reply-draft``). ``client`` is the signalkit
    client (default: the default client, looked up at each call). ``model_variant`` tags
    the model reference (an A/B arm, a prompt version). ``attributes`` are added to every
    exposure. ``digest=True`` adds the SHA-256 of the output text; ``capture_output=True``
    adds the text itself (cut to 1,024 characters) — neither is recorded otherwise.
    Raises :class:`signalkit.ConfigError` naming a bad argument, :class:`SdkNotInstalled`
    without the ``openai`` package.
    """
    sdk = _sdk()
    if not isinstance(openai_client, sdk.OpenAI | sdk.AsyncOpenAI):
        raise ConfigError(
            "instrument(openai_client): expected an openai.OpenAI or openai.AsyncOpenAI "
            f"client, got {type(openai_client).__name__}"
        )
    settings = _genai.settings(
        "signalkit_openai.instrument",
        client=client,
        surface=surface,
        provider=_provider(sdk, openai_client),
        model_variant=model_variant,
        attributes=attributes,
        digest=digest,
        capture_output=capture_output,
    )
    try:
        _stainless.instrument(openai_client, settings, routes=_ROUTES, resources=_resources)
    except (AttributeError, TypeError) as exc:
        raise ConfigError(
            f"signalkit_openai.instrument: this openai version ({sdk.__version__}) has an "
            f"unexpected client shape ({exc}); please report it"
        ) from exc
    return openai_client


def uninstrument(openai_client: object) -> bool:
    """Stop recording ``openai_client``'s completions and restore its methods.

    Returns False if it was not instrumented. Copies made from it stay instrumented until
    uninstrumented themselves."""
    return _stainless.uninstrument(openai_client)


def is_instrumented(openai_client: object) -> bool:
    """Whether :func:`instrument` is in effect on ``openai_client``."""
    return _stainless.is_instrumented(openai_client)


def exposure_of(response: object) -> Exposure | None:
    """The exposure recorded for a response (a ``ChatCompletion``, a ``Response``), or
    opened for a stream (``Stream`` from ``create(stream=True)``, or the stream a
    ``.stream()`` manager gave), while that object lives; None if unknown."""
    found = _genai.exposure_of(response)
    if found is None:
        raw = getattr(response, "_raw_stream", None)  # the helpers' ChatCompletionStream...
        if raw is not None:
            found = _genai.exposure_of(raw)
    return found
