"""JWT authentication of Socket.IO connections: settings, verification, claims.

Pure module: nothing here touches the network or the Socket.IO server. The gateway
verifies the token a client sends in its ``auth`` payload (``{"token": "<jwt>"}``) at
connect, refuses with the failure reason, and keeps the resulting ``Claims`` per
connection to check subscriptions and expiry.

Keys: an HMAC shared secret (``HS*``), a PEM public key (``RS*``/``PS*``/``ES*``/``EdDSA``),
or a JWKS file (keys picked by the token's ``kid``; re-read when the file changes, so a
rotated Kubernetes Secret takes effect without a restart). HMAC and public-key algorithms
are never mixed (that mix is the classic algorithm-confusion attack), ``none`` is never
accepted, and every token must carry ``exp``.

Claims: ``sub`` (logged as the client's identity), ``exp``, and optionally ``symbols``
(JWT_SYMBOLS_CLAIM): a list of symbols the client may subscribe to; ``["*"]`` or no claim
means every symbol.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES384",
        "ES512",
        "EdDSA",
    }
)
#: Shortest HMAC secret accepted (RFC 7518 3.2: at least the hash size, 256 bits for HS256).
MIN_SECRET_BYTES = 32
#: Longer tokens are refused unread (a cheap guard against oversized auth payloads).
MAX_TOKEN_BYTES = 8192
ALL_SYMBOLS = "*"


PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "jwt-secret"})


class AuthFailure(StrEnum):
    """Why a token was refused; the values are metric labels and the refusal message."""

    MISSING = "missing_token"
    MALFORMED = "malformed_token"
    EXPIRED = "token_expired"
    NOT_YET_VALID = "token_not_yet_valid"
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "algorithm_not_allowed"
    UNKNOWN_KEY = "unknown_key"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_ISSUER = "wrong_issuer"
    MISSING_CLAIM = "missing_claim"
    INVALID_CLAIMS = "invalid_claims"
    SUBJECT_CHANGED = "subject_changed"


class AuthError(Exception):
    def __init__(self, reason: AuthFailure, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class AuthSettings(BaseModel):
    """Mixin for ``GatewaySettings`` (``class GatewaySettings(ServiceSettings, AuthSettings)``)."""

    auth_required: bool = Field(
        default=False,
        description="Refuse Socket.IO connections without a valid JWT. When false, a token "
        "is still verified if sent (and refused if bad); clients without one are unrestricted.",
    )
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["HS256"],
        description="Comma-separated accepted algorithms: HS256/384/512, or public-key ones "
        "(RS*, PS*, ES*, EdDSA); never both kinds.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description=f"HS*: shared secret, at least {MIN_SECRET_BYTES} bytes."
    )
    jwt_public_key_file: FilePath | None = Field(
        default=None, description="RS*/ES*/PS*/EdDSA: PEM public key file."
    )
    jwt_jwks_file: FilePath | None = Field(
        default=None, description="RS*/ES*/PS*/EdDSA: JWKS file (keys by 'kid'; re-read on change)."
    )
    jwt_audience: str | None = Field(default=None, description="Required 'aud' claim value.")
    jwt_issuer: str | None = Field(default=None, description="Required 'iss' claim value.")
    jwt_leeway_s: float = Field(default=10.0, ge=0, le=300, description="Clock skew allowed, s.")
    jwt_symbols_claim: str = Field(
        default="symbols", min_length=1, description="Claim listing the symbols a client may see."
    )
    auth_warn_before_s: float = Field(
        default=60.0, ge=0, description="Send 'auth_expiring' this long before the token expires."
    )

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        algorithms = set(self.jwt_algorithms)
        unknown = algorithms - HMAC_ALGORITHMS - PUBLIC_KEY_ALGORITHMS
        if not algorithms or unknown:
            raise ValueError(f"JWT_ALGORITHMS: unsupported {sorted(unknown) or 'empty list'}")
        if algorithms & HMAC_ALGORITHMS and algorithms & PUBLIC_KEY_ALGORITHMS:
            raise ValueError("JWT_ALGORITHMS mixes HS* with public-key algorithms; pick one kind")
        if algorithms <= HMAC_ALGORITHMS:
            self._check_secret()
        else:
            if self.jwt_public_key_file is not None and self.jwt_jwks_file is not None:
                raise ValueError("set JWT_PUBLIC_KEY_FILE or JWT_JWKS_FILE, not both")
            if self.auth_required and self.jwt_public_key_file is self.jwt_jwks_file is None:
                raise ValueError(
                    f"AUTH_REQUIRED with {sorted(algorithms)} needs "
                    "JWT_PUBLIC_KEY_FILE or JWT_JWKS_FILE"
                )
        return self

    def _check_secret(self) -> None:
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        if secret is None:
            if self.auth_required:
                raise ValueError("AUTH_REQUIRED with HS* algorithms needs JWT_SECRET")
            return
        weak = secret.lower() in PLACEHOLDER_SECRETS or len(secret.encode()) < MIN_SECRET_BYTES
        if weak and getattr(self, "environment", "production") != "development":
            raise ValueError(
                f"JWT_SECRET is a placeholder or shorter than {MIN_SECRET_BYTES} "
                "bytes; set a real secret (or ENVIRONMENT=development)"
            )

    @property
    def auth_enabled(self) -> bool:
        """True when tokens can be verified (a key is configured)."""
        return any((self.jwt_secret, self.jwt_public_key_file, self.jwt_jwks_file))


@dataclass(frozen=True)
class Claims:
    subject: str | None
    expires_at: float
    #: None: every symbol; else only these.
    symbols: frozenset[str] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def allows(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    def refused(self, symbols: list[str]) -> list[str]:
        """The symbols of ``symbols`` this client may not subscribe to."""
        return [s for s in symbols if not self.allows(s)]

    def seconds_left(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)


def token_from_auth(auth: object) -> str | None:
    """The token in a Socket.IO ``auth`` payload ``{"token": ...}``; None when absent."""
    if isinstance(auth, dict):
        token = auth.get("token")
        return token if isinstance(token, str) and token else None
    return None


class TokenVerifier:
    """Checks signature, algorithm, ``exp``/``nbf``, audience and issuer; returns ``Claims``."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._algorithms = list(settings.jwt_algorithms)
        self._key: Any = None
        if settings.jwt_secret is not None and set(self._algorithms) <= HMAC_ALGORITHMS:
            self._key = settings.jwt_secret.get_secret_value().encode()
        elif settings.jwt_public_key_file is not None:
            self._key = load_pem_public_key(settings.jwt_public_key_file.read_bytes())
        self._jwks = _JwksFile(settings.jwt_jwks_file) if settings.jwt_jwks_file else None
        if self._jwks is not None:
            self._jwks.keys()  # a broken JWKS file fails start-up, not the first client

    def verify(self, token: object) -> Claims:
        if not isinstance(token, str) or not token:
            raise AuthError(AuthFailure.MISSING, "no token in the auth payload")
        if len(token) > MAX_TOKEN_BYTES:
            raise AuthError(AuthFailure.MALFORMED, f"token longer than {MAX_TOKEN_BYTES} bytes")
        key = self._key_for(token)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_s,
                options={"require": ["exp"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_reason(exc), str(exc)) from None
        return self._claims(payload)

    def refresh(self, current: Claims, token: object) -> Claims:
        """Verify a refreshed token; it must name the same subject as the one it replaces."""
        claims = self.verify(token)
        if claims.subject != current.subject:
            raise AuthError(AuthFailure.SUBJECT_CHANGED, "a refresh must keep the same 'sub'")
        return claims

    def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            if self._key is None:
                raise AuthError(AuthFailure.UNKNOWN_KEY, "no verification key configured")
            return self._key
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(AuthFailure.MALFORMED, str(exc)) from None
        return self._jwks.key(header.get("kid"))

    def _claims(self, payload: dict[str, Any]) -> Claims:
        sub = payload.get("sub")
        if sub is not None and not isinstance(sub, str):
            raise AuthError(AuthFailure.INVALID_CLAIMS, "'sub' must be a string")
        name = self._settings.jwt_symbols_claim
        symbols: frozenset[str] | None = None
        if name in payload:
            listed = payload[name]
            if not isinstance(listed, list) or not all(isinstance(s, str) for s in listed):
                raise AuthError(AuthFailure.INVALID_CLAIMS, f"'{name}' must be a list of strings")
            symbols = None if ALL_SYMBOLS in listed else frozenset(listed)
        return Claims(sub, float(payload["exp"]), symbols, payload)


class _JwksFile:
    """A JWKS file, re-read when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._mtime_ns = -1
        self._keys: dict[str | None, jwt.PyJWK] = {}

    def keys(self) -> dict[str | None, jwt.PyJWK]:
        mtime_ns = os.stat(self._path).st_mtime_ns
        if mtime_ns != self._mtime_ns:
            jwks = jwt.PyJWKSet.from_json(self._path.read_text())
            self._keys = {k.key_id: k for k in jwks.keys}
            self._mtime_ns = mtime_ns
        return self._keys

    def key(self, kid: object) -> jwt.PyJWK:
        try:
            keys = self.keys()
        except (OSError, jwt.PyJWTError) as exc:  # a bad rotation must not crash the gateway
            raise AuthError(AuthFailure.UNKNOWN_KEY, f"JWKS unreadable: {exc}") from None
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        found = keys.get(kid) if isinstance(kid, str) else None
        if found is None:
            raise AuthError(AuthFailure.UNKNOWN_KEY, f"no key with kid {str(kid)[:64]!r}")
        return found


_REASONS: tuple[tuple[type[jwt.PyJWTError], AuthFailure], ...] = (
    (jwt.ExpiredSignatureError, AuthFailure.EXPIRED),
    (jwt.ImmatureSignatureError, AuthFailure.NOT_YET_VALID),
    (jwt.InvalidAudienceError, AuthFailure.WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, AuthFailure.WRONG_ISSUER),
    (jwt.InvalidSignatureError, AuthFailure.BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, AuthFailure.BAD_ALGORITHM),
    (jwt.MissingRequiredClaimError, AuthFailure.MISSING_CLAIM),
    (jwt.InvalidKeyError, AuthFailure.UNKNOWN_KEY),
    (jwt.PyJWKError, AuthFailure.UNKNOWN_KEY),
    (jwt.DecodeError, AuthFailure.MALFORMED),
)


def _reason(exc: jwt.PyJWTError) -> AuthFailure:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return AuthFailure.INVALID_CLAIMS
