"""scripts/run_local.py as a person runs it: real Redis, monitor, gateways, notifier and its
webhook receiver, on free ports.

Once with stdout to a pipe (as when redirected to a file): every line prefixed with its
service, no escape codes, JSON log lines, the URL block, a signal on a gateway's HTTP API
and the same signal delivered, signed, to the webhook receiver, and a clean Ctrl-C. Once
on a pseudo-terminal: coloured prefixes, and Enter shows the URLs again.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_server import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run_local.py"
HEADER = "Quantum Signals is running"
NAMES = ("run-local", "gateway-1", "gateway-2", "monitor", "webhook", "notifier", "redis")
# The name padded to the widest one ("gateway-1", "run-local": 9), then " |".
PREFIX = re.compile(
    r"^(run-local|gateway-1|gateway-2|monitor  |webhook  |notifier |redis    ) \|( |$)"
)
COLOURED = re.compile(r"\x1b\[[0-9;]+m(gateway-1|gateway-2|monitor  |redis    ) \|\x1b\[0m")
START_S = 60.0  # the slowest start seen here is ~8 s; a busy shared machine gets room
STOP_S = 30.0  # run_local.py's own grace (25 s) plus its exit


def runner_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "LOG_FORMAT", "NO_COLOR"}}
    env.pop("ADMIN_TOKEN", None)
    env.pop("NOTIFIER_CONFIG", None)
    ports = [free_port() for _ in range(5)]
    env |= {"GATEWAY_PORTS": f"{ports[0]},{ports[1]}", "MONITOR_PORT": str(ports[2])}
    env |= {"NOTIFIER_PORT": str(ports[3]), "WEBHOOK_PORT": str(ports[4])}
    # The default 2 s bars give a first signal within seconds on average, not surely within
    # the test's bound: the old 0.5 s pace makes one certain.
    env["TICK_INTERVAL_S"] = "0.5"
    return env


def children_of(pid: int) -> dict[int, bytes]:
    """Each direct child's pid and command line, read from /proc."""
    found: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # The field after the command (which may hold spaces) is the state, then the ppid.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
    return found


def alive(pid: int, cmdline: bytes) -> bool:
    """Still running as the same program (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        same = Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline
    except OSError:
        return False
    return same and stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def cleanup(runner: subprocess.Popen[bytes], children: dict[int, bytes]) -> Iterator[None]:
    """Whatever happens, nothing this test started outlives it."""
    try:
        yield
    finally:
        if runner.poll() is None:  # it may have started children the test has not seen yet
            children.update(children_of(runner.pid))
        for pid, cmdline in children.items():
            if alive(pid, cmdline):
                os.kill(pid, signal.SIGKILL)
        if runner.poll() is None:
            runner.kill()
        runner.wait(10)


def latest_signals(port: int) -> list[object]:
    url = f"http://127.0.0.1:{port}/api/signals/latest?limit=5"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = json.load(response)
    except OSError:
        return []
    return list(body["signals"] if isinstance(body, dict) else body)


def webhook_ids(lines: list[bytes]) -> set[str]:
    """Ids of the signals the receiver printed: it prints only deliveries it verified."""
    prefix = b"webhook   | {"
    return {
        json.loads(line[len(prefix) - 1 :])["id"] for line in list(lines) if line.startswith(prefix)
    }


def test_piped_output_is_prefixed_plain_and_stops_cleanly_on_ctrl_c() -> None:
    env = runner_env()
    ports = [int(p) for p in env["GATEWAY_PORTS"].split(",")]
    started = time.monotonic()
    runner = subprocess.Popen(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert runner.stdout is not None
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(runner.stdout or []), daemon=True)
    reader.start()
    children: dict[int, bytes] = {}
    with cleanup(runner, children):
        while not any(HEADER.encode() in line for line in list(lines)):
            assert runner.poll() is None, b"".join(lines).decode()
            assert time.monotonic() - started < START_S, "no URL block"
            time.sleep(0.2)
        children.update(children_of(runner.pid))
        assert len(children) == 6, children  # redis, 2 gateways, monitor, notifier, receiver
        while not (published := [s for port in ports for s in latest_signals(port)]):
            assert time.monotonic() - started < 40, "no signal on a gateway within 40 s"
            time.sleep(0.5)
        signal_s = time.monotonic() - started
        while not (hooks := webhook_ids(lines)) & {s["id"] for s in published}:  # type: ignore[index]
            assert time.monotonic() - started < 60, "no signal at the webhook receiver"
            time.sleep(0.5)

        runner.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert runner.wait(STOP_S) == 0
        reader.join(5)
        assert not [pid for pid, cmd in children.items() if alive(pid, cmd)]
        assert runner.stderr is not None
        assert runner.stderr.read() == b""
    print(f"first signal on a gateway after {signal_s:.1f} s; {len(hooks)} at the webhook")
    assert_plain_and_prefixed([line.decode().rstrip("\n") for line in lines], ports)


def assert_plain_and_prefixed(text: list[str], ports: list[int]) -> None:
    """What a redirected run writes: prefixed lines, no escape codes, JSON from services."""
    assert all(PREFIX.match(line) for line in text), [t for t in text if not PREFIX.match(t)]
    assert not any("\x1b" in line for line in text)
    assert {line.split(" |")[0].strip() for line in text} == set(NAMES)
    block = "\n".join(text)
    for url in (f"http://127.0.0.1:{ports[0]}/", f"http://127.0.0.1:{ports[1]}/", "/docs"):
        assert url in block
    assert "admin token  dev-admin-token" in block
    assert "Press Enter to show this again" in block
    # Not a terminal: the services log JSON, one object per line.
    gateway_lines = [t.split("| ", 1)[1] for t in text if t.startswith("gateway-1 | ")]
    assert gateway_lines and all(json.loads(g)["service"] == "gateway" for g in gateway_lines)
    stopping = "Ctrl-C: stopping gateway-1, gateway-2, monitor, webhook, notifier, redis ..."
    assert f"run-local | {stopping}" in text
    assert text[-1] == "run-local | All stopped."


def read_until(fd: int, seen: bytearray, done: re.Pattern[bytes], timeout_s: float) -> None:
    """Read the terminal into ``seen`` until ``done`` matches it or the time is up."""
    deadline = time.monotonic() + timeout_s
    while not done.search(seen):
        left = deadline - time.monotonic()
        assert left > 0, f"waited {timeout_s} s for {done.pattern!r}"
        if select.select([fd], [], [], min(left, 0.5))[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the other side closed: the runner exited
                assert done.search(seen), f"exited before {done.pattern!r}"


def test_on_a_terminal_prefixes_are_coloured_and_enter_shows_the_urls_again() -> None:
    env = runner_env()
    master, slave = pty.openpty()
    runner = subprocess.Popen(
        [sys.executable, str(SCRIPT)], cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    children: dict[int, bytes] = {}
    seen = bytearray()
    header = HEADER.encode()
    try:
        with cleanup(runner, children):
            read_until(master, seen, re.compile(b"Press Enter to show this again"), START_S)
            children.update(children_of(runner.pid))
            text = seen.decode(errors="replace")
            assert {m.group(1) for m in COLOURED.finditer(text)} >= {"gateway-1", "gateway-2"}
            # A terminal: the services log for people (console lines), not JSON.
            assert not re.search(r"gateway-1 \|\x1b\[0m \{", text)

            before = seen.count(header)
            os.write(master, b"\n")  # Enter
            again = re.compile(b"(?s)(" + re.escape(header) + b".*){%d}" % (before + 1))
            read_until(master, seen, again, 3)

            runner.send_signal(signal.SIGINT)
            read_until(master, seen, re.compile(b"All stopped"), STOP_S)
            assert runner.wait(STOP_S) == 0
            assert not [pid for pid, cmd in children.items() if alive(pid, cmd)]
    finally:
        os.close(master)
