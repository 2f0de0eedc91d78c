"""E-mail against a real SMTP server (aiosmtpd) on loopback that requires STARTTLS and AUTH."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from notifier.destinations.base import DeliveryError, Destination
from notifier.destinations.email import EmailConfig
from tests.integration.notifier.dest_common import SIGNAL_ID, SUMMARY, sample_delivery
from tests.support.receivers import SmtpReceiver
from tests.support.redis_server import free_port


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver(users={"qs-bot": "s3cret"}) as rx:
        yield rx


def email_config(rx: SmtpReceiver, monkeypatch: pytest.MonkeyPatch, **options: Any) -> EmailConfig:
    monkeypatch.setenv("QS_TEST_SMTP_PASSWORD", "s3cret")
    fields: dict[str, Any] = {
        "name": "desk-mail",
        "host": "127.0.0.1",
        "port": rx.port,
        "username": "qs-bot",
        "password": {"env": "QS_TEST_SMTP_PASSWORD"},
        "ca_file": str(rx.ca_file),
        "from_addr": "signals@qs.example",
        "to": ["desk@qs.example", "ops@qs.example"],
        "timeout_s": 5,
    }
    return EmailConfig.model_validate({**fields, **options})


async def send(config: EmailConfig, **changes: Any) -> None:
    destination: Destination = config.build()
    try:
        await destination.send(sample_delivery(**changes))
    finally:
        await destination.aclose()


async def test_envelope_headers_body_starttls_auth(
    smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    await send(email_config(smtp, monkeypatch))
    [mail] = smtp.mails
    assert mail.tls  # STARTTLS before MAIL FROM
    assert mail.auth_user == "qs-bot" and mail.auth_mechanism in {"PLAIN", "LOGIN"}
    assert mail.mail_from == "signals@qs.example"
    assert mail.rcpt_tos == ["desk@qs.example", "ops@qs.example"]
    msg = mail.message()
    assert msg["From"] == "signals@qs.example"
    assert msg["To"] == "desk@qs.example, ops@qs.example"
    assert msg["Subject"] == "BUY BTC-USD at 60,112.40"
    digest = hashlib.sha256(SIGNAL_ID.encode()).hexdigest()[:40]
    assert msg["Message-ID"] == f"<{digest}@qs.example>"
    assert msg["X-QS-Idempotency-Key"] == SIGNAL_ID
    assert msg["Date"].datetime.timestamp() == 1700000000.0  # the signal's time
    assert msg.get_content_type() == "text/plain"
    body = msg.get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert body.startswith(SUMMARY + "\n")
    assert "Indicators: sma_fast=60,100.12, sma_slow=60,050.00" in body


async def test_repeat_same_message_id(smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = email_config(smtp, monkeypatch, subject="[$strategy] $headline", template="$reason")
    await send(config)
    await send(config)
    await send(config, id="ETH-USD:sma_cross:1", symbol="ETH-USD")
    first, again, other = (m.message() for m in smtp.mails)
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["References"] == again["References"] != other["References"]
    assert first["Subject"] == "[sma_cross] BUY BTC-USD at 60,112.40"
    assert first.get_content().replace("\r\n", "\n") == "SMA 5 crossed above SMA 20 at 60,112.40\n"


async def test_wrong_password_permanent(
    smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = email_config(smtp, monkeypatch)
    monkeypatch.setenv("QS_TEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(DeliveryError) as caught:
        await send(config)
    assert caught.value.permanent and "535" in str(caught.value)
    assert not smtp.mails


async def test_data_refused_4xx_retryable_5xx_permanent(
    smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = email_config(smtp, monkeypatch)
    smtp.reject_data = (451, "4.3.0 try again later")
    with pytest.raises(DeliveryError) as caught:
        await send(config)
    assert not caught.value.permanent and "451" in str(caught.value)
    smtp.reject_data = (554, "5.7.1 message rejected")
    with pytest.raises(DeliveryError) as caught:
        await send(config)
    assert caught.value.permanent


async def test_untrusted_certificate_retryable(
    smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without ca_file the self-signed certificate fails verification: nothing is sent in
    # the clear, and the error says why.
    config = email_config(smtp, monkeypatch, ca_file=None)
    with pytest.raises(DeliveryError) as caught:
        await send(config)
    assert not caught.value.permanent
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) or "certificate" in str(caught.value)
    assert not smtp.mails


async def test_connection_refused_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    config = EmailConfig.model_validate(
        {
            "name": "gone",
            "host": "127.0.0.1",
            "port": free_port(),
            "security": "none",
            "from_addr": "signals@qs.example",
            "to": ["desk@qs.example"],
            "timeout_s": 2,
        }
    )
    with pytest.raises(DeliveryError) as caught:
        await send(config)
    assert not caught.value.permanent


async def test_implicit_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpReceiver(users={"qs-bot": "s3cret"}, implicit_tls=True) as rx:
        await send(email_config(rx, monkeypatch, security="tls"))
        [mail] = rx.mails
    assert mail.tls and mail.auth_user == "qs-bot"
    assert mail.rcpt_tos == ["desk@qs.example", "ops@qs.example"]


async def test_starttls_server_refuses_plain_client(
    smtp: SmtpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The receiver really requires STARTTLS: a client that skips it (security none, no
    # password) is refused, so `mail.tls` in the other tests is not a formality.
    config = email_config(smtp, monkeypatch, security="none", username=None, password=None)
    with pytest.raises(DeliveryError) as caught:
        await send(config)
    assert "530" in str(caught.value) and not smtp.mails


async def test_silent_server_times_out_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    # A listening socket that never accepts: the TCP handshake completes (backlog), the SMTP
    # greeting never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        config = EmailConfig.model_validate(
            {
                "name": "silent",
                "host": "127.0.0.1",
                "port": silent.getsockname()[1],
                "from_addr": "signals@qs.example",
                "to": ["desk@qs.example"],
                "timeout_s": 0.5,
            }
        )
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            await send(config)
    assert not caught.value.permanent and "Timeout" in str(caught.value)
    assert time.monotonic() - started < 5
