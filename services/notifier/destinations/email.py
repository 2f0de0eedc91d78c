"""E-mail over SMTP with aiosmtplib: STARTTLS (or implicit TLS), AUTH, a plain-text body.

One connection per message: deliveries to a destination are serial and rare next to an
SMTP session's cost, and a fresh connection has no idle-timeout state to get wrong.

The ``Message-ID`` is derived from the idempotency key, so a repeated delivery (a retry
after a lost answer, a takeover) is the same message to the mail client, which shows it
once; ``References`` names one thread per symbol and strategy so clients group them.

An SMTP reply of 5xx is permanent (a refused recipient, failed authentication); 4xx
replies, timeouts, disconnects and TLS failures are retried.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import aiosmtplib
from pydantic import Field, field_validator, model_validator

from notifier.destinations import _http
from notifier.destinations.base import (
    Delivery,
    DeliveryError,
    Destination,
    DestinationConfig,
    SecretRef,
)
from notifier.destinations.templates import (
    TemplatedConfig,
    check_template,
    render,
    signal_fields,
)

DEFAULT_SUBJECT = "$headline"
DEFAULT_BODY = """$summary

Side:       $type
Symbol:     $symbol
Price:      $price
Strategy:   $strategy $timeframe
Time:       $time
Indicators: $indicators
Signal id:  $id
"""
_ADDRESS = r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"


class EmailConfig(TemplatedConfig):
    """``template`` is the body; ``subject`` is a template too."""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    #: "starttls" (port 587), "tls" (implicit, port 465), or "none" (a local relay only;
    #: refused together with a password).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    #: PEM file of the CA that signed the server's certificate, if not a public one.
    ca_file: Path | None = None
    from_addr: str = Field(pattern=_ADDRESS)
    to: tuple[str, ...] = Field(min_length=1)
    subject: str = DEFAULT_SUBJECT

    default_template = DEFAULT_BODY

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [a for a in value if not _is_address(a)]
        if bad:
            raise ValueError(f"not an e-mail address: {bad[0]!r}")
        return value

    @field_validator("ca_file")
    @classmethod
    def _loadable(cls, value: Path | None) -> Path | None:
        _tls_context(value)
        return value

    @field_validator("subject")
    @classmethod
    def _subject_placeholders(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _auth(self) -> EmailConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both 'username' and 'password', or neither")
        if self.password is not None and self.security == "none":
            raise ValueError("a password over an unencrypted connection: use starttls or tls")
        return self

    def build(self) -> Destination:
        return EmailDestination(self)


class EmailDestination:
    def __init__(self, config: EmailConfig) -> None:
        self.config: DestinationConfig = config
        self._email = config
        self._password = config.password.reveal() if config.password else None
        self._tls = _tls_context(config.ca_file)

    def message(self, delivery: Delivery) -> EmailMessage:
        config = self._email
        signal = delivery.signal
        msg = EmailMessage()
        msg["From"] = config.from_addr
        msg["To"] = ", ".join(config.to)
        # A header is one line: a template's newlines would end it early.
        msg["Subject"] = " ".join(render(config.subject, signal).split()) or "signal"
        domain = config.from_addr.rpartition("@")[2]
        msg["Message-ID"] = f"<{_digest(delivery.idempotency_key)}@{domain}>"
        fields = signal_fields(signal)
        thread = f"{fields['symbol']}/{fields['strategy']}"
        msg["References"] = f"<thread-{_digest(thread)[:24]}@{domain}>"
        msg["Date"] = email.utils.formatdate(_when(signal.get("ts")), usegmt=True)
        msg["X-QS-Idempotency-Key"] = _http.header_safe(delivery.idempotency_key)
        msg.set_content(config.text(signal) + "\n")
        return msg

    async def send(self, delivery: Delivery) -> None:
        config = self._email
        what = f"email {config.name}"
        try:
            await aiosmtplib.send(
                self.message(delivery),
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=self._password,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                tls_context=self._tls if config.security != "none" else None,
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            permanent = all(code >= 500 for code in codes)
            raise DeliveryError(f"{what}: recipients refused: {exc}", permanent=permanent) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{what}: {exc.code} {exc.message}", permanent=exc.code >= 500
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timeouts, disconnects, refused connections, TLS handshakes (ssl.SSLError is an
            # OSError): the server may be back soon.
            raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        pass  # no connection outlives a send


def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:  # start-up fails with the reason
        raise ValueError(f"cannot load {ca_file}: {exc}") from None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _when(ts: object) -> float | None:
    if isinstance(ts, int | float) and not isinstance(ts, bool) and 0 < ts < 32503680000:
        return float(ts)
    return None  # formatdate: now


def _is_address(value: str) -> bool:
    return re.fullmatch(_ADDRESS, value) is not None
