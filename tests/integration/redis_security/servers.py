"""Real redis-server processes for the security tests: ACL, TLS (a CA made here), Sentinel.

Everything binds 127.0.0.1 on free ports, lives in a temporary directory, and is stopped
by ``stop()`` (the fixtures call it even when a test fails).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.redis_server import free_port, redis_server_binary, server_args

MASTER_NAME = "qsmaster"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[Any, bool]],
) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def make_tls_files(directory: Path) -> TlsFiles:
    """A throw-away CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qs test CA")])
    ca = _cert(
        "qs test CA",
        ca_key,
        ca_name,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
        ],
    )
    files: dict[str, Path] = {"ca": directory / "ca.pem"}
    files["ca"].write_bytes(ca)
    for role, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = _cert(
            f"qs {role}",
            key,
            ca_name,
            ca_key,
            [
                (x509.SubjectAlternativeName(names), False),
                (x509.ExtendedKeyUsage([usage]), False),
            ],
        )
        files[f"{role}_cert"] = directory / f"{role}.pem"
        files[f"{role}_cert"].write_bytes(cert)
        files[f"{role}_key"] = _write_key(key, directory / f"{role}.key")
    return TlsFiles(**files)


class RedisProcess:
    """One redis-server (or sentinel) process; ``ping`` says when it is ready."""

    def __init__(self, args: list[str], ping: Callable[[], object], workdir: Path) -> None:
        self.args = args
        self._ping = ping
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> RedisProcess:
        log = (self.workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        log.close()
        wait_until(self._ready, timeout_s, f"{self.args[0]} ready\n{self.log()}")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"redis exited early:\n{self.log()}")
        try:
            self._ping()
            return True
        except (redis.RedisError, OSError):
            return False

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to clients or sentinels (a crashed node)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout_s}s")
        time.sleep(0.05)


def _ping(**kwargs: Any) -> Callable[[], object]:
    def ping() -> object:
        with redis.Redis(socket_connect_timeout=0.5, socket_timeout=0.5, **kwargs) as client:
            return client.ping()

    return ping


def start_acl_redis(admin_password: str, user: str, user_password: str) -> tuple[RedisProcess, int]:
    """requirepass for ``default``, plus a least-privilege ACL user for the services."""
    port, workdir = free_port(), Path(tempfile.mkdtemp(prefix="qs-redis-acl-"))
    acl = [
        user,
        "on",
        f">{user_password}",
        "~quantum_signals*",
        "&quantum_signals*",
        "+@all",
        "-@dangerous",
    ]
    args = [*server_args(port, workdir), "--requirepass", admin_password, "--user", *acl]
    ping = _ping(host="127.0.0.1", port=port, username=user, password=user_password)
    return RedisProcess(args, ping, workdir).start(), port


def start_tls_redis(tls: TlsFiles) -> tuple[RedisProcess, int]:
    """TLS only (plain port disabled), clients must present a certificate from the CA."""
    port, workdir = free_port(), Path(tempfile.mkdtemp(prefix="qs-redis-tls-"))
    args = [
        *server_args(0, workdir),
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(tls.server_cert),
        "--tls-key-file",
        str(tls.server_key),
        "--tls-ca-cert-file",
        str(tls.ca),
        "--tls-auth-clients",
        "yes",
    ]
    ping = _ping(
        host="127.0.0.1",
        port=port,
        ssl=True,
        ssl_ca_certs=str(tls.ca),
        ssl_certfile=str(tls.client_cert),
        ssl_keyfile=str(tls.client_key),
    )
    return RedisProcess(args, ping, workdir).start(), port


def sentinel_command(conf: Path) -> list[str]:
    found = shutil.which("redis-sentinel")
    return [found, str(conf)] if found else [redis_server_binary(), str(conf), "--sentinel"]


@dataclass
class SentinelGroup:
    master: RedisProcess
    replica: RedisProcess
    sentinels: list[RedisProcess]
    master_port: int
    replica_port: int
    sentinel_ports: list[int]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/0/{MASTER_NAME}"

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], socket_timeout=2, decode_responses=True)

    def master_port_now(self, index: int = 0) -> int:
        with self.sentinel(index) as client:
            _host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(port)

    def ready_for_failover(self) -> bool:
        """Every sentinel sees the replica as healthy and knows the other two sentinels."""
        for index in range(len(self.sentinels)):
            with self.sentinel(index) as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                state = client.execute_command("SENTINEL", "MASTER", MASTER_NAME)
            healthy = [
                r
                for r in replicas
                if _fields(r).get("flags") == "slave"
                and _fields(r).get("master-link-status") == "ok"
            ]
            if not healthy or int(_fields(state).get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def stop(self) -> None:
        for proc in [*self.sentinels, self.replica, self.master]:
            proc.stop()


def _fields(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}


def start_sentinel_group() -> SentinelGroup:
    """A master, one replica, three sentinels (quorum 2) with short failure timeouts."""
    started: list[RedisProcess] = []
    try:
        master_port, replica_port = free_port(), free_port()
        master_dir = Path(tempfile.mkdtemp(prefix="qs-sentinel-master-"))
        master = RedisProcess(
            server_args(master_port, master_dir),
            _ping(host="127.0.0.1", port=master_port),
            master_dir,
        ).start()
        started.append(master)
        replica_dir = Path(tempfile.mkdtemp(prefix="qs-sentinel-replica-"))
        replica_args = [
            *server_args(replica_port, replica_dir),
            "--replicaof",
            "127.0.0.1",
            str(master_port),
        ]
        replica = RedisProcess(
            replica_args, _ping(host="127.0.0.1", port=replica_port), replica_dir
        ).start()
        started.append(replica)
        ports, sentinels = [free_port() for _ in range(3)], []
        for port in ports:
            workdir = Path(tempfile.mkdtemp(prefix="qs-sentinel-"))
            conf = workdir / "sentinel.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f"dir {workdir}",
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2",
                        f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                        f"sentinel failover-timeout {MASTER_NAME} 5000",
                        f"sentinel parallel-syncs {MASTER_NAME} 1",
                        "",
                    ]
                )
            )
            proc = RedisProcess(
                sentinel_command(conf), _ping(host="127.0.0.1", port=port), workdir
            ).start()
            started.append(proc)
            sentinels.append(proc)
        return SentinelGroup(master, replica, sentinels, master_port, replica_port, ports)
    except BaseException:
        for proc in started:
            proc.stop()
        raise
