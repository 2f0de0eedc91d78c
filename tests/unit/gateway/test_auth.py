"""JWT verification with keys generated here: HS256, RS256, ES256 and a JWKS file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from common.settings import ServiceSettings, load_settings
from gateway.clients.auth import (
    AuthError,
    AuthFailure,
    AuthSettings,
    TokenVerifier,
    token_from_auth,
)
from tests.support.settings import startup_error

SECRET = "0123456789abcdef0123456789abcdef-test"
AUD, ISS = "quantum-signals", "https://auth.example"


class Settings(ServiceSettings, AuthSettings):
    """How the gateway composes it: GatewaySettings(ServiceSettings, AuthSettings)."""


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "aud": AUD, "iss": ISS, "exp": time.time() + 300, **extra}


def hs_verifier(**overrides: Any) -> TokenVerifier:
    fields: dict[str, Any] = {"jwt_secret": SECRET, "jwt_audience": AUD, "jwt_issuer": ISS}
    return TokenVerifier(AuthSettings(**(fields | overrides)))


def failure(verifier: TokenVerifier, token: object) -> AuthFailure:
    with pytest.raises(AuthError) as info:
        verifier.verify(token)
    return info.value.reason


def pem_public(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_hs256_valid_token_gives_claims() -> None:
    token = jwt.encode(claims(symbols=["BTC-USD", "ETH-USD"]), SECRET, algorithm="HS256")
    got = hs_verifier().verify(token)
    assert got.subject == "alice"
    assert got.symbols == {"BTC-USD", "ETH-USD"}
    assert got.allows("BTC-USD") and not got.allows("SOL-USD")
    assert got.refused(["BTC-USD", "SOL-USD"]) == ["SOL-USD"]
    assert 290 < got.seconds_left() <= 300


@pytest.mark.parametrize(
    ("token_claims", "key", "expected"),
    [
        # Built when the test runs, not at collection: a long suite would expire them.
        (lambda: claims(exp=time.time() - 60), SECRET, AuthFailure.EXPIRED),
        (lambda: claims(nbf=time.time() + 600), SECRET, AuthFailure.NOT_YET_VALID),
        (claims, "another-secret-of-at-least-32-bytes!!", AuthFailure.BAD_SIGNATURE),
        (lambda: claims(aud="someone-else"), SECRET, AuthFailure.WRONG_AUDIENCE),
        (lambda: claims(iss="https://evil.example"), SECRET, AuthFailure.WRONG_ISSUER),
        (lambda: {"sub": "alice", "aud": AUD, "iss": ISS}, SECRET, AuthFailure.MISSING_CLAIM),
        (lambda: claims(symbols="BTC-USD"), SECRET, AuthFailure.INVALID_CLAIMS),
        (lambda: claims(sub=42), SECRET, AuthFailure.INVALID_CLAIMS),
    ],
)
def test_hs256_refusals_name_the_reason(
    token_claims: Callable[[], dict[str, Any]], key: str, expected: AuthFailure
) -> None:
    token = jwt.encode(token_claims(), key, algorithm="HS256")
    assert failure(hs_verifier(), token) == expected


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, AuthFailure.MISSING),
        ("", AuthFailure.MISSING),
        (12345, AuthFailure.MISSING),
        ("not-a-jwt", AuthFailure.MALFORMED),
        ("a.b.c", AuthFailure.MALFORMED),
        ("x" * 9000, AuthFailure.MALFORMED),
    ],
)
def test_garbage_is_refused_as_missing_or_malformed(token: object, expected: AuthFailure) -> None:
    assert failure(hs_verifier(), token) == expected


def test_alg_none_and_other_algorithms_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert failure(hs_verifier(), unsigned) == AuthFailure.BAD_ALGORITHM
    hs512 = jwt.encode(claims(), SECRET + "-longer-for-hs512-xxxxxxxxxxxxxxxxx", algorithm="HS512")
    assert failure(hs_verifier(), hs512) == AuthFailure.BAD_ALGORITHM
    rs = jwt.encode(claims(), rsa_key, algorithm="RS256")
    assert failure(hs_verifier(), rs) == AuthFailure.BAD_ALGORITHM


def test_rs256_public_key_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    settings = AuthSettings(
        jwt_algorithms=["RS256"],
        jwt_audience=AUD,
        jwt_public_key_file=pem_public(rsa_key, tmp_path / "rsa.pem"),
    )
    verifier = TokenVerifier(settings)
    assert verifier.verify(jwt.encode(claims(), rsa_key, algorithm="RS256")).subject == "alice"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert failure(verifier, jwt.encode(claims(), other, algorithm="RS256")) == (
        AuthFailure.BAD_SIGNATURE
    )


def test_algorithm_confusion_hs256_signed_with_the_public_key_is_refused(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    public_pem = pem_public(rsa_key, tmp_path / "rsa.pem")
    verifier = TokenVerifier(
        AuthSettings(jwt_algorithms=["RS256"], jwt_audience=AUD, jwt_public_key_file=public_pem)
    )

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(claims()).encode())
    mac = hmac.new(public_pem.read_bytes(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + b64(mac)).decode()
    assert failure(verifier, forged) == AuthFailure.BAD_ALGORITHM


def test_es256_public_key_file(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    settings = AuthSettings(
        jwt_algorithms=["ES256"],
        jwt_issuer=ISS,
        jwt_audience=AUD,
        jwt_public_key_file=pem_public(ec_key, tmp_path / "ec.pem"),
    )
    verifier = TokenVerifier(settings)
    assert verifier.verify(jwt.encode(claims(), ec_key, algorithm="ES256")).subject == "alice"
    token = jwt.encode(claims(iss="https://other"), ec_key, algorithm="ES256")
    assert failure(verifier, token) == AuthFailure.WRONG_ISSUER


def write_jwks(path: Path, keys: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]) -> Path:
    entries = []
    for kid, key in keys.items():
        if isinstance(key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "RS256"}
        else:
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"alg": "ES256"}
        entries.append(jwk | {"kid": kid, "use": "sig"})
    path.write_text(json.dumps({"keys": entries}))
    return path


def test_jwks_file_picks_the_key_by_kid_and_follows_rotation(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    jwks = write_jwks(tmp_path / "jwks.json", {"rsa-1": rsa_key, "ec-1": ec_key})
    verifier = TokenVerifier(
        AuthSettings(jwt_algorithms=["RS256", "ES256"], jwt_audience=AUD, jwt_jwks_file=jwks)
    )
    by_rsa = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    by_ec = jwt.encode(claims(sub="bob"), ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier.verify(by_rsa).subject == "alice"
    assert verifier.verify(by_ec).subject == "bob"
    unknown = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "nope"})
    assert failure(verifier, unknown) == AuthFailure.UNKNOWN_KEY
    # Signed by the EC key but claiming the RSA key's kid.
    mixed = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "rsa-1"})
    assert failure(verifier, mixed) in {AuthFailure.UNKNOWN_KEY, AuthFailure.BAD_ALGORITHM}

    # Rotation: the Secret behind the file changes; rsa-1 is retired, rsa-2 takes over.
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write_jwks(jwks, {"rsa-2": new_key})
    stat = jwks.stat()
    os.utime(jwks, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert failure(verifier, by_rsa) == AuthFailure.UNKNOWN_KEY
    fresh = jwt.encode(claims(), new_key, algorithm="RS256", headers={"kid": "rsa-2"})
    assert verifier.verify(fresh).subject == "alice"


def test_symbols_claim_star_means_every_symbol_and_name_is_configurable() -> None:
    token = jwt.encode(claims(symbols=["*"]), SECRET, algorithm="HS256")
    assert hs_verifier().verify(token).symbols is None
    token = jwt.encode(claims(markets=["BTC-USD"]), SECRET, algorithm="HS256")
    assert hs_verifier(jwt_symbols_claim="markets").verify(token).symbols == {"BTC-USD"}
    assert hs_verifier().verify(token).symbols is None  # no 'symbols' claim: unrestricted


def test_refresh_keeps_the_subject() -> None:
    verifier = hs_verifier()
    current = verifier.verify(jwt.encode(claims(exp=time.time() + 5), SECRET, algorithm="HS256"))
    later = verifier.refresh(current, jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert later.expires_at > current.expires_at
    with pytest.raises(AuthError) as info:
        verifier.refresh(current, jwt.encode(claims(sub="mallory"), SECRET, algorithm="HS256"))
    assert info.value.reason == AuthFailure.SUBJECT_CHANGED


def test_token_from_the_socketio_auth_payload() -> None:
    assert token_from_auth({"token": "abc"}) == "abc"
    assert token_from_auth({"token": 5}) is None
    assert token_from_auth("abc") is None
    assert token_from_auth(None) is None


def test_settings_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", "ES256, ES384")
    monkeypatch.setenv("JWT_PUBLIC_KEY_FILE", str(pem_public(ec_key, tmp_path / "k.pem")))
    monkeypatch.setenv("AUTH_REQUIRED", "true")
    settings = load_settings(Settings, [])
    assert settings.jwt_algorithms == ["ES256", "ES384"]
    assert settings.auth_required and settings.auth_enabled
    assert not AuthSettings().auth_enabled


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JWT_ALGORITHMS": "HS256,RS256"}, "mixes HS* with public-key"),
        ({"JWT_ALGORITHMS": "none"}, "unsupported"),
        ({"JWT_SECRET": "changeme"}, "JWT_SECRET is a placeholder"),
        ({"JWT_SECRET": "short-but-not-32-bytes"}, "JWT_SECRET is a placeholder"),
        ({"AUTH_REQUIRED": "true"}, "needs JWT_SECRET"),
        ({"AUTH_REQUIRED": "true", "JWT_ALGORITHMS": "RS256"}, "needs JWT_PUBLIC_KEY_FILE"),
        (
            {"JWT_ALGORITHMS": "RS256", "JWT_PUBLIC_KEY_FILE": "/missing.pem"},
            "configuration error: JWT_PUBLIC_KEY_FILE:",
        ),
    ],
)
def test_bad_auth_settings_fail_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    expected: str,
) -> None:
    err = startup_error(monkeypatch, capsys, Settings, env)
    assert expected in err
    assert "short-but-not" not in err


def test_short_secret_is_fine_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "dev-secret")
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert load_settings(Settings, []).auth_enabled
