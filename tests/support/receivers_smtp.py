"""A recording SMTP server for tests: aiosmtpd with STARTTLS and AUTH (see receivers.py).

::

    with SmtpReceiver(users={"qs": "pw"}) as rx:   # 127.0.0.1:rx.port, TLS + auth required
        ...                                        # client trusts rx.ca_file
        mail = rx.wait_for(1)[0]
        mail.mail_from, mail.rcpt_tos, mail.tls, mail.auth_user, mail.auth_mechanism
        mail.message()["Subject"], mail.message().get_content()
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import logging
import ssl
import tempfile
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.redis_server import free_port


def _not_login_data_notice(record: logging.LogRecord) -> bool:
    # aiosmtpd 1.4 logs this about its own use of Session.login_data on every AUTH.
    return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_not_login_data_notice)


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool  # the mail came over TLS (STARTTLS, or implicit TLS)
    auth_user: str | None
    auth_mechanism: str | None

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``host`` (and localhost) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class SmtpReceiver:
    def __init__(self, users: dict[str, str] | None = None, *, implicit_tls: bool = False) -> None:
        self.users = users if users is not None else {"qs": "secret"}
        #: TLS from the first byte (port 465 style) instead of STARTTLS.
        self.implicit_tls = implicit_tls
        self.mails: list[Mail] = []
        #: (code, text) to answer DATA with instead of accepting, e.g. (451, "4.3.0 later").
        self.reject_data: tuple[int, str] | None = None
        self._changed = threading.Condition()
        self._dir = tempfile.TemporaryDirectory(prefix="qs-smtp-")
        self.ca_file, key_file = self_signed_cert(Path(self._dir.name))
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(self.ca_file, key_file)
        self.port = free_port()
        self._controller: Controller | None = None

    def start(self) -> SmtpReceiver:
        tls: dict[str, Any] = (
            # aiosmtpd counts only STARTTLS as TLS for AUTH, and warns (an error under
            # pytest) when AUTH is required without it: with implicit TLS, AUTH is offered
            # but not required; Mail.auth_user still says whether the client used it.
            {"ssl_context": self._tls, "auth_require_tls": False, "auth_required": False}
            if self.implicit_tls
            else {"tls_context": self._tls, "require_starttls": True, "auth_required": True}
        )
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            **tls,
            authenticator=self._authenticate,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._dir.cleanup()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Mail]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.mails) >= count, timeout_s):
                raise AssertionError(f"{len(self.mails)} mails after {timeout_s}s, not {count}")
            return list(self.mails)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = self.users.get(user) == password
        return AuthResult(success=ok, handled=False, auth_data=(mechanism, user) if ok else None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.reject_data is not None:
            code, text = self.reject_data
            return f"{code} {text}"
        mechanism, user = session.auth_data or (None, None)
        mail = Mail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            content=envelope.original_content or envelope.content,
            # Asked of the connection itself, whichever way TLS started.
            tls=server.transport.get_extra_info("ssl_object") is not None,
            auth_user=user,
            auth_mechanism=mechanism,
        )
        with self._changed:
            self.mails.append(mail)
            self._changed.notify_all()
        return "250 OK"
