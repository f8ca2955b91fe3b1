"""Exposure tokens: compact, URL-safe, HMAC-SHA256-signed references to an exposure.

A token carries the exposure id, the time it was shown and the model reference, so a
stateless backend (or a browser relay) can record a later signal with its time-to-action
without a lookup, and without accepting forgeries. Layout (before base64url)::

    kid(4) | exposure id(16) | shown_at ms (int64) | name | version | variant | tag(16)

Each string is a length byte then UTF-8 (255 = absent). ``kid`` is derived from the secret, so
rotation works by listing several secrets: the first signs, all verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets as _secrets
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import ConfigError, InvalidToken
from .events import ModelRef

__all__ = ["PREFIX", "TokenClaims", "TokenSigner"]

PREFIX = "sk1."
_HEAD = struct.Struct(">4s16sq")
_TAG_LEN = 16  # 128-bit truncated HMAC-SHA256 tag (NIST SP 800-107 allows >= 64 bits)
_ABSENT = 255
_MIN_SECRET_BYTES = 16
_URLSAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# base64url to standard base64 for binascii's strict decoder. The standard alphabet's own "+",
# "/" and "=" become "!", which it rejects: a token has exactly one spelling.
_FROM_URLSAFE = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = {0: b"", 1: b"===", 2: b"==", 3: b"="}  # 1: never valid, and strict mode says so
_B64_VALUE = {chr(c): i for i, c in enumerate(_URLSAFE)}
_UNUSED_BITS = {0: 0, 1: 0, 2: 0b1111, 3: 0b11}  # low bits of the last character, must be 0


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says about its exposure."""

    exposure_id: str
    shown_at_ms: int
    """When the exposure was shown, Unix milliseconds."""
    model: ModelRef
    key_id: str
    """Hex id of the key that signed it (never the key)."""


def _kid(secret: bytes) -> bytes:
    return hashlib.sha256(b"signalkit.kid:" + secret).digest()[:4]


def _pack_str(value: str | None) -> bytes:
    if value is None:
        return bytes((_ABSENT,))
    raw = value.encode("utf-8")
    if len(raw) >= _ABSENT:  # too long to carry: the verifier sees it as absent
        return bytes((_ABSENT,))
    return bytes((len(raw),)) + raw


class TokenSigner:
    """Signs and verifies exposure tokens with one or more secrets.

    Secrets come from ``secret=`` (a string, or a sequence for rotation) or the
    ``SIGNALKIT_SECRET`` environment variable (comma-separated). With neither, a random secret
    is made for this process: tokens then verify only here, which ``ephemeral`` reports.
    Secrets never appear in ``repr``, logs or exception messages.
    """

    __slots__ = (
        "_cache",
        "_keys",
        "_models",
        "_signing",
        "ephemeral",
        "max_age_ms",
        "max_skew_ms",
    )

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes] | None = None,
        *,
        max_age_s: float = 30 * 86_400,
        max_skew_s: float = 300,
    ) -> None:
        raw: list[bytes]
        if secret is None:
            env = os.environ.get("SIGNALKIT_SECRET", "")
            raw = [s.strip().encode() for s in env.split(",") if s.strip()]
        elif isinstance(secret, str | bytes):
            raw = [secret.encode() if isinstance(secret, str) else secret]
        else:
            raw = [s.encode() if isinstance(s, str) else s for s in secret]
        for i, key in enumerate(raw):
            if len(key) < _MIN_SECRET_BYTES:
                raise ConfigError(
                    f"secret[{i}]: too short ({len(key)} bytes); use at least "
                    f"{_MIN_SECRET_BYTES} random bytes, e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'`"
                )
        if max_age_s <= 0 or max_skew_s < 0:
            raise ConfigError("token_max_age: must be > 0 seconds")
        self.ephemeral = not raw
        if not raw:
            raw = [_secrets.token_bytes(32)]
        self._keys = {_kid(k): hmac.new(k, digestmod=hashlib.sha256) for k in raw}
        self._signing = (_kid(raw[0]), self._keys[_kid(raw[0])])
        self._models: dict[bytes, ModelRef] = {}
        self.max_age_ms = int(max_age_s * 1000)
        self.max_skew_ms = int(max_skew_s * 1000)
        self._cache: dict[str, TokenClaims] = {}

    def __repr__(self) -> str:
        kids = ",".join(k.hex() for k in self._keys)
        return f"TokenSigner(keys=[{kids}], ephemeral={self.ephemeral})"

    def sign(self, exposure_id: str, shown_at_ms: int, model: ModelRef | None = None) -> str:
        """Return the token of an exposure."""
        kid, key = self._signing
        m = model or ModelRef()
        body = (
            _HEAD.pack(kid, uuid.UUID(exposure_id).bytes, shown_at_ms)
            + _pack_str(m.name)
            + _pack_str(m.version)
            + _pack_str(m.variant)
        )
        mac = key.copy()  # the key's inner and outer hash states are computed once
        mac.update(body)
        tag = mac.digest()[:_TAG_LEN]
        return PREFIX + base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode("ascii")

    def verify(self, token: str, now_ms: int | None = None, *, cache: bool = True) -> TokenClaims:
        """Check a token and return its claims; raise :class:`InvalidToken` naming the reason.

        ``now_ms`` is the time to check expiry against (the signal's time when backfilling).
        """
        claims = self._cache.get(token) if isinstance(token, str) else None
        if claims is None:
            claims = self._verify_signature(token)
            if not cache:
                self.check_age(claims.shown_at_ms, now_ms)
                return claims
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[token] = claims
        self.check_age(claims.shown_at_ms, now_ms)
        return claims

    def check_age(self, shown_at_ms: int, now_ms: int | None = None) -> None:
        """Raise :class:`InvalidToken` if an exposure shown at ``shown_at_ms`` is too old (or
        too far in the future) for a signal at ``now_ms``."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        age = now - shown_at_ms
        if age > self.max_age_ms:
            raise InvalidToken(
                "expired",
                f"exposure was shown {age // 1000} s before the signal; tokens are valid for "
                f"{self.max_age_ms // 1000} s (token_max_age)",
            )
        if -age > self.max_skew_ms:
            raise InvalidToken("future", f"token is dated {-age // 1000} s after the signal's time")

    def _verify_signature(self, token: object) -> TokenClaims:
        return TokenClaims(*self._claims(token))

    def _claims(self, token: object) -> tuple[str, int, ModelRef, str]:
        """Check a token's form and signature; its claims as a tuple (what TokenClaims holds:
        the client's hot path skips making the object)."""
        if not isinstance(token, str):
            raise InvalidToken("malformed", f"expected a str, got {type(token).__name__}")
        if not token.startswith(PREFIX):
            raise InvalidToken("malformed", f"does not start with {PREFIX!r}")
        payload = token[len(PREFIX) :]
        if len(payload) > 2048:
            raise InvalidToken("malformed", "longer than any token signalkit makes")
        try:
            data = payload.encode("ascii").translate(_FROM_URLSAFE) + _PADDING[len(payload) % 4]
            raw = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
            raise InvalidToken("malformed", "not base64url") from None
        if payload and _B64_VALUE[payload[-1]] & _UNUSED_BITS[len(payload) % 4]:
            raise InvalidToken("malformed", "not canonical base64url")  # one spelling per token
        if len(raw) < _HEAD.size + 3 + _TAG_LEN:
            raise InvalidToken("malformed", "too short")
        body, tag = raw[:-_TAG_LEN], raw[-_TAG_LEN:]
        kid = body[:4]
        key = self._keys.get(kid)
        if key is None:
            hint = (
                " (this client has a random per-process secret: set SIGNALKIT_SECRET, the same "
                "in every process that signs or verifies)"
                if self.ephemeral
                else ""
            )
            raise InvalidToken("unknown_key", f"signed by key {kid.hex()}, not one of ours{hint}")
        mac = key.copy()
        mac.update(body)
        if not hmac.compare_digest(mac.digest()[:_TAG_LEN], tag):
            raise InvalidToken("tampered", "signature does not match its contents")
        _, id_bytes, shown_at_ms = _HEAD.unpack_from(body)
        h = id_bytes.hex()
        exposure_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        # the model part is authenticated by the tag and takes few values: parsed and
        # validated once, then looked up by its bytes
        model = self._models.get(body[_HEAD.size :])
        if model is None:
            model = self._parse_model(body)
        return exposure_id, shown_at_ms, model, kid.hex()

    def _parse_model(self, body: bytes) -> ModelRef:
        pos = _HEAD.size
        parts: list[str | None] = []
        try:
            for _ in range(3):
                n = body[pos]
                pos += 1
                if n == _ABSENT:
                    parts.append(None)
                    continue
                parts.append(body[pos : pos + n].decode("utf-8"))
                pos += n
        except (IndexError, UnicodeDecodeError):
            raise InvalidToken("malformed", "bad model reference") from None
        if pos != len(body):
            raise InvalidToken("malformed", "trailing bytes")
        model = ModelRef(name=parts[0], version=parts[1], variant=parts[2])
        if len(self._models) < 1024:
            self._models[body[_HEAD.size :]] = model
        return model
