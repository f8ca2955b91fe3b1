"""Exposure tokens: signed, compact, verifiable in another process; forgeries are rejected."""

from __future__ import annotations

import logging
import string
from datetime import UTC, datetime, timedelta

import pytest

import signalkit as sk
from signalkit._ids import new_id
from signalkit.events import ModelRef
from signalkit.tokens import PREFIX, TokenSigner

SECRET = "s" * 32
# A secret distinctive enough that finding it in any text means it leaked.
LEAKY = "correct-horse-battery-staple-7f3a9c"
OTHER = "another-secret-that-is-long-enough"
STRANGER = "a-third-secret-nobody-configured"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
URLSAFE = string.ascii_letters + string.digits + "-_"


def at_ms(ms: float) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner(SECRET)


@pytest.fixture
def shown_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


@pytest.fixture
def token(signer: TokenSigner, shown_ms: int) -> str:
    return signer.sign(new_id(), shown_ms, ModelRef(name="drafter", version="v1"))


def _flip(token: str, index: int) -> str:
    ch = token[index]
    return token[:index] + ("B" if ch == "A" else "A") + token[index + 1 :]


# -- round trip ----------------------------------------------------------------------------------


def test_sign_then_verify_returns_the_claims(signer: TokenSigner, shown_ms: int) -> None:
    exposure_id = new_id()
    model = ModelRef(name="drafter", version="2026-11-01", variant="b")
    token = signer.sign(exposure_id, shown_ms, model)
    claims = signer.verify(token)
    assert claims.exposure_id == exposure_id
    assert claims.shown_at_ms == shown_ms
    assert claims.model == model
    assert len(claims.key_id) == 8
    assert all(c in string.hexdigits for c in claims.key_id)


def test_a_token_is_compact_and_url_safe(token: str) -> None:
    assert token.startswith(PREFIX)
    assert len(token) < 120
    assert all(c in URLSAFE for c in token[len(PREFIX) :])


def test_an_exposure_token_verifies_with_its_client(client: sk.Client) -> None:
    with client.exposure("search", model="ranker", model_version="v7") as exp:
        token = exp.token  # available inside the block, before the exposure is recorded
    claims = client.verify(token)
    assert claims.exposure_id == exp.id
    assert claims.shown_at_ms == exp.shown_at_ms
    assert claims.model == ModelRef(name="ranker", version="v7")
    assert exp.event is not None
    assert int(exp.event.ts.timestamp() * 1000) == exp.shown_at_ms


def test_a_token_verifies_in_another_client_sharing_the_secret(client: sk.Client) -> None:
    with client.exposure("search") as exp:
        pass
    other = sk.Client("elsewhere", exporters=[sk.MemoryExporter()], secret=SECRET)
    try:
        assert other.verify(exp.token).exposure_id == exp.id
    finally:
        other.shutdown(timeout=2)


# -- rejections ----------------------------------------------------------------------------------


def test_a_tampered_token_is_rejected(signer: TokenSigner, token: str) -> None:
    with pytest.raises(sk.InvalidToken) as info:
        signer.verify(_flip(token, len(token) // 2))
    assert info.value.reason == "tampered"


def test_a_token_tampered_anywhere_in_its_signed_body_is_rejected(
    signer: TokenSigner, token: str
) -> None:
    # every character but the last few (which hold the tag's end and base64 padding bits)
    for index in range(len(PREFIX), len(token) - 3):
        with pytest.raises(sk.InvalidToken):
            signer.verify(_flip(token, index))


def test_any_single_character_change_to_a_token_is_rejected(
    signer: TokenSigner, token: str
) -> None:
    accepted = []
    for index in range(len(PREFIX), len(token)):
        for ch in URLSAFE:
            changed = token[:index] + ch + token[index + 1 :]
            if changed == token:
                continue
            try:
                signer.verify(changed)
            except sk.InvalidToken:
                continue
            accepted.append(changed)
    assert accepted == []


def test_a_truncated_token_is_rejected(signer: TokenSigner, token: str) -> None:
    for cut in (1, 5, 20, len(token) - len(PREFIX) - 1):
        with pytest.raises(sk.InvalidToken) as info:
            signer.verify(token[:-cut])
        assert info.value.reason in {"malformed", "tampered"}


def test_a_token_with_extra_characters_is_rejected(signer: TokenSigner, token: str) -> None:
    for changed in (token + "A", token + "AAAA", token + "!", " " + token, token + "\n"):
        with pytest.raises(sk.InvalidToken):
            signer.verify(changed)


def test_a_token_spelled_in_standard_base64_or_padded_is_rejected(
    signer: TokenSigner, shown_ms: int
) -> None:
    # the same bytes spelled another way must not pass: one spelling per token. A token with
    # both "-" and "_" is needed to spell it in the standard alphabet; most random ones are.
    token = next(
        t
        for t in (signer.sign(new_id(), shown_ms) for _ in range(1000))
        if "-" in t[len(PREFIX) :] and "_" in t[len(PREFIX) :]
    )
    assert signer.verify(token)
    payload = token[len(PREFIX) :]
    assert len(payload) % 4  # unpadded: padding it is another spelling
    spellings = [
        PREFIX + payload.replace("-", "+").replace("_", "/"),
        PREFIX + payload + "=" * (-len(payload) % 4),
        token + "=",
        token[:12] + "=" + token[13:],
        token[:12] + "é" + token[13:],
    ]
    for changed in spellings:
        assert changed != token
        with pytest.raises(sk.InvalidToken) as info:
            signer.verify(changed)
        assert info.value.reason in {"malformed", "tampered"}


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "sk1.",
        "sk1.!!!!",
        "sk1.AAAA",
        "sk2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sk1." + "A" * 5000,
        "SK1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "01a1fc6d-fb87-7c1a-9d2e-2f0c6a1b3e44",
    ],
)
def test_a_malformed_token_is_rejected_as_malformed(signer: TokenSigner, garbage: str) -> None:
    with pytest.raises(sk.InvalidToken) as info:
        signer.verify(garbage)
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("value", [None, 123, b"sk1.AAAA", ["sk1."], {"token": "x"}, 1.5])
def test_a_token_that_is_not_a_str_is_rejected_as_malformed(
    signer: TokenSigner, value: object
) -> None:
    with pytest.raises(sk.InvalidToken) as info:
        signer.verify(value)  # type: ignore[arg-type]
    assert info.value.reason == "malformed"


def test_the_wrong_prefix_is_rejected(signer: TokenSigner, token: str) -> None:
    with pytest.raises(sk.InvalidToken) as info:
        signer.verify("sk2." + token[len(PREFIX) :])
    assert info.value.reason == "malformed"


def test_a_token_signed_with_another_key_is_rejected_as_unknown_key(token: str) -> None:
    with pytest.raises(sk.InvalidToken) as info:
        TokenSigner(OTHER).verify(token)
    assert info.value.reason == "unknown_key"


def test_an_expired_token_is_rejected(client: sk.Client, shown_ms: int) -> None:
    with client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidToken) as info:
        client.verify(exp.token, at=datetime(2200, 1, 1, tzinfo=UTC))
    assert info.value.reason == "expired"
    # just inside the default 30 days it still verifies
    assert client.verify(exp.token, at=at_ms(exp.shown_at_ms + 29 * 86_400_000))


def test_token_max_age_is_configurable(memory: sk.MemoryExporter) -> None:
    client = sk.Client("svc", exporters=[memory], secret=SECRET, token_max_age_s=60)
    try:
        with client.exposure("s") as exp:
            pass
        assert client.verify(exp.token, at=at_ms(exp.shown_at_ms + 59_000))
        with pytest.raises(sk.InvalidToken, match="expired"):
            client.verify(exp.token, at=at_ms(exp.shown_at_ms + 61_000))
    finally:
        client.shutdown(timeout=2)


def test_a_future_dated_token_is_rejected(client: sk.Client) -> None:
    with client.exposure("s") as exp:
        pass
    with pytest.raises(sk.InvalidToken) as info:
        client.verify(exp.token, at=at_ms(exp.shown_at_ms - 3_600_000))
    assert info.value.reason == "future"
    # within the five minutes of allowed clock skew it verifies
    assert client.verify(exp.token, at=at_ms(exp.shown_at_ms - 60_000))


def test_expiry_is_checked_every_time_even_for_a_token_verified_before(
    client: sk.Client,
) -> None:
    with client.exposure("s") as exp:
        pass
    assert client.verify(exp.token)
    with pytest.raises(sk.InvalidToken, match="expired"):
        client.verify(exp.token, at=datetime(2200, 1, 1, tzinfo=UTC))
    assert client.verify(exp.token)


def test_client_verify_raises_invalid_token_naming_the_reason(client: sk.Client) -> None:
    with pytest.raises(sk.InvalidToken) as info:
        client.verify("sk1.garbage")
    assert info.value.reason == "malformed"
    assert "malformed" in str(info.value)
    assert isinstance(info.value, sk.SignalkitError)
    assert isinstance(info.value, ValueError)


def test_a_token_is_checked_once_by_verify_then_its_signals(
    client: sk.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the browser relay verifies a token, then records the signal with it: one HMAC, not two
    with client.exposure("s", model="m") as exp:
        pass
    token = exp.token
    checks: list[str] = []
    real = TokenSigner._claims

    def counted(self: TokenSigner, value: object) -> tuple[str, int, ModelRef, str]:
        checks.append("hmac")
        return real(self, value)

    monkeypatch.setattr(TokenSigner, "_claims", counted)
    claims = client.verify(token)
    first = client.action(token, "accepted")
    second = client.action(token, "copied")
    assert first is not None
    assert second is not None
    assert first.exposure_id == second.exposure_id == claims.exposure_id == exp.id
    assert checks == ["hmac"]


def test_a_token_from_a_client_without_a_secret_only_verifies_in_that_client() -> None:
    lonely = sk.Client("svc", exporters=[sk.MemoryExporter()], secret=None)
    other = sk.Client("svc", exporters=[sk.MemoryExporter()], secret=SECRET)
    try:
        with lonely.exposure("s") as exp:
            pass
        assert lonely.verify(exp.token).exposure_id == exp.id
        with pytest.raises(sk.InvalidToken, match="unknown_key"):
            other.verify(exp.token)
    finally:
        lonely.shutdown(timeout=2)
        other.shutdown(timeout=2)


def test_a_secret_shorter_than_16_bytes_is_a_config_error() -> None:
    with pytest.raises(sk.ConfigError, match="secret") as info:
        TokenSigner("short-secret")
    assert "short-secret" not in str(info.value)


# -- key rotation through SIGNALKIT_SECRET -------------------------------------------------------


@pytest.fixture
def rotated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALKIT_SECRET", f"{OTHER}, {SECRET}")


def test_with_several_secrets_in_the_env_the_first_signs(rotated_env: None, shown_ms: int) -> None:
    rotated = TokenSigner()
    token = rotated.sign(new_id(), shown_ms)
    assert not rotated.ephemeral
    TokenSigner(OTHER).verify(token)  # signed with the first secret
    with pytest.raises(sk.InvalidToken, match="unknown_key"):
        TokenSigner(SECRET).verify(token)


def test_with_several_secrets_in_the_env_all_verify(
    rotated_env: None, token: str, shown_ms: int
) -> None:
    rotated = TokenSigner()
    assert rotated.verify(token).shown_at_ms == shown_ms  # old key, second in the list
    assert rotated.verify(TokenSigner(OTHER).sign(new_id(), shown_ms))


def test_a_client_reads_its_secrets_from_the_env(
    rotated_env: None, memory: sk.MemoryExporter, token: str
) -> None:
    client = sk.Client("svc", exporters=[memory])
    try:
        assert client.verify(token)
        with client.exposure("s") as exp:
            pass
        TokenSigner(OTHER).verify(exp.token)
    finally:
        client.shutdown(timeout=2)


def test_an_unset_env_secret_makes_an_ephemeral_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNALKIT_SECRET", raising=False)
    assert TokenSigner().ephemeral
    assert not TokenSigner(SECRET).ephemeral


# -- the secret never leaks ----------------------------------------------------------------------


def _rejections(token: str) -> list[object]:
    """One example of every way a token is rejected (expiry aside)."""
    claims_ms = int(datetime.now(UTC).timestamp() * 1000)
    return [
        _flip(token, len(token) // 2),  # tampered
        token[:-10],  # truncated
        "sk1.not-base64-$$$",  # malformed
        123,  # not a str
        TokenSigner(STRANGER).sign(new_id(), claims_ms),  # unknown key
    ]


def test_the_secret_never_appears_in_reprs() -> None:
    signer = TokenSigner([LEAKY, OTHER])
    client = sk.Client("svc", exporters=[sk.MemoryExporter()], secret=LEAKY)
    try:
        for text in (repr(signer), str(signer), repr(client), str(client), repr(client.stats)):
            assert LEAKY not in text
            assert OTHER not in text
    finally:
        client.shutdown(timeout=2)


def test_the_secret_never_appears_in_exceptions(shown_ms: int) -> None:
    signer = TokenSigner(LEAKY)
    token = signer.sign(new_id(), shown_ms)
    rejected = [*_rejections(token)]
    for bad in rejected:
        with pytest.raises(sk.InvalidToken) as info:
            signer.verify(bad)  # type: ignore[arg-type]
        assert LEAKY not in str(info.value)
        assert LEAKY not in repr(info.value)
    for when, reason in (
        (shown_ms + 40 * 86_400_000, "expired"),
        (shown_ms - 86_400_000, "future"),
    ):
        with pytest.raises(sk.InvalidToken, match=reason) as info:
            signer.verify(token, when)
        assert LEAKY not in str(info.value)


def test_the_secret_never_appears_in_logged_warnings(
    caplog: pytest.LogCaptureFixture, memory: sk.MemoryExporter
) -> None:
    client = sk.Client("svc", exporters=[memory], secret=[LEAKY, OTHER], warn_interval_s=0.0)
    try:
        with client.exposure("s") as exp:
            pass
        with caplog.at_level(logging.DEBUG, logger="signalkit"):
            for bad in _rejections(exp.token):
                assert client.action(bad, "accepted") is None  # type: ignore[arg-type]
            assert client.action(exp.token, at=datetime(2200, 1, 1, tzinfo=UTC)) is None
            assert client.action(exp.token, at=at_ms(exp.shown_at_ms - 86_400_000)) is None
            client.flush(2)
        assert len(caplog.records) >= 7
        assert LEAKY not in caplog.text
        assert OTHER not in caplog.text
        assert set(client.stats.rejected) >= {
            "token_tampered",
            "token_malformed",
            "token_unknown_key",
            "token_expired",
            "token_future",
        }
    finally:
        client.shutdown(timeout=2)


def test_a_signal_with_a_rejected_token_records_nothing(
    client: sk.Client, memory: sk.MemoryExporter
) -> None:
    with client.exposure("s") as exp:
        pass
    assert client.action(_flip(exp.token, 30), "accepted") is None
    assert client.stats.rejected == {"token_tampered": 1}
    assert client.stats.rejected_fields == {"token": 1}
    client.flush(2)
    assert [e.kind for e in memory.events] == ["exposure"]
