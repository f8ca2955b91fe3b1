"""signalkit-openai: record every OpenAI completion as a signalkit exposure.

::

    import signalkit as sk
    from openai import OpenAI
    import signalkit_openai

    openai = signalkit_openai.instrument(OpenAI(), surface="reply-draft")
    draft = openai.chat.completions.create(model="gpt-4o-mini", messages=[...])
    exposure = sk.current_exposure()       # or signalkit_openai.exposure_of(draft)
    ...
    sk.correction(exposure, original=text, corrected=sent_text)

Each completion becomes one exposure: the model that answered, the latency (and, for a
stream, the time to its first chunk), ``gen_ai.response.id``, token usage and finish reasons
under the OpenTelemetry GenAI attribute names; the output text only as a digest or text if
asked. What the client returns is returned unchanged. See the README.
"""

from ._instrument import (
    INSTALL_HINT,
    SdkNotInstalled,
    exposure_of,
    instrument,
    is_instrumented,
    uninstrument,
)
from ._version import __version__

__all__ = [
    "INSTALL_HINT",
    "SdkNotInstalled",
    "__version__",
    "exposure_of",
    "instrument",
    "is_instrumented",
    "uninstrument",
]
