"""Processes of one benchmark run: Redis, the gateways under comparison, /proc sampling.

Every process is started on 127.0.0.1, pinned to a core, and stopped by this module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
GATEWAY_CORE = 0
LOAD_CORE = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Niceness of every process the benchmark starts (run.py --nice; negative needs root).
NICE = {"value": 0}
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


#: Where the gateway's code comes from: "HEAD" (the last commit, exported once per run, so a
#: half-edited work tree cannot break a run) or "worktree" (services/ as it is on disk).
SOURCE = {"value": "HEAD", "path": ""}
#: run.py --probe: the gateway runs under fanout_probe.py, which writes its timings here.
PROBE = {"dir": ""}
#: run.py --gateway-env KEY=VALUE: extra settings for the gateway target (e.g. overload ones).
GATEWAY_ENV: dict[str, str] = {}


def services_dir() -> str:
    if SOURCE["value"] == "worktree":
        return str(ROOT / "services")
    if not SOURCE["path"]:
        dest = tempfile.mkdtemp(prefix="qs-bench-src-")
        archive = subprocess.run(
            ["git", "archive", "HEAD", "services"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        SOURCE["path"] = str(Path(dest) / "services")
    return SOURCE["path"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cores() -> tuple[int, int]:
    """(gateway core, load core); on a one-core machine both are 0."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return available[0], available[0]
    return available[0], available[1]


def pinned(core: int):  # type: ignore[no-untyped-def]
    def pin() -> None:
        os.sched_setaffinity(0, {core})
        if NICE["value"]:
            os.nice(NICE["value"])

    return pin


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    user, kernel = cpu_split(pid)
    return user + kernel


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process: its own code, and the kernel working for it (syscalls;
    on loopback a send also runs the receiver's TCP input path)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def wait_seconds(pid: int) -> float:
    """Time the main thread spent runnable but waiting for a CPU (other jobs on its core)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def rss_kb(pid: int) -> int:
    statm = Path(f"/proc/{pid}/statm").read_text().split()
    return int(statm[1]) * PAGE_KB


def raise_fd_limit() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: Node 18+ and npm are needed for the benchmark")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


@dataclass
class Proc:
    """A child process with its log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    core: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        fd, path = tempfile.mkstemp(prefix=f"qs-bench-{self.name}-", suffix=".log")
        os.close(fd)
        self.log_path = Path(path)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Proc:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                list(self.argv),
                env={**os.environ, **self.env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=None if self.core is None else pinned(self.core),  # noqa: PLW1509
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self, tail: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


class Server(Proc):
    """A gateway replica that answers GET /readyz."""

    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.logs()}")
            if http_status(f"{self.url}/readyz") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout_s}s:\n{self.logs()}")


def start_redis(core: int) -> tuple[Proc, str]:
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="qs-bench-redis-")
    redis = Proc(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--protected-mode",
            "no",
            "--client-output-buffer-limit",
            "pubsub",
            "256mb",
            "64mb",
            "60",
        ],
        core=core,
    ).start()
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return redis, url
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start:\n{redis.logs()}")


def target_server(kind: str, redis_url: str, core: int) -> Server:
    """One replica of a target: gateway, gateway-off (its overload policy never engages),
    plain or node."""
    port = free_port()
    env = {"REDIS_URL": redis_url, "PORT": str(port), "HOST": "127.0.0.1"}
    name = kind
    policy_off = name == "gateway-off"
    if policy_off:  # the gateway with its overload policy out of reach (before/after runs)
        name = "gateway"
    if name == "gateway":
        argv = [sys.executable, "-m", "gateway"]
        if PROBE["dir"]:
            argv = [sys.executable, str(HERE / "fanout_probe.py")]
            env["QS_PROBE_DIR"] = PROBE["dir"]
        env |= {
            "PYTHONPATH": services_dir(),
            "TRANSPORTS": "websocket",
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "json",
            # The references never shed load; measure the gateway the same way.
            "CLIENT_QUEUE_MAX": "10000000",
            "MAX_CONNECTIONS": "100000",
        } | GATEWAY_ENV
        if policy_off:
            env["OVERLOAD_AGE_MS"] = str(3_600_000)
    elif name == "plain":
        argv = [sys.executable, str(HERE / "plain_gateway.py")]
    elif name == "node":
        argv = [shutil.which("node") or "node", str(NODE_DIR / "server.js")]
    else:
        raise ValueError(f"unknown target {kind!r}: use gateway, plain or node")
    server = Server(kind.replace(":", "-").replace(",", "+"), argv, env, core)
    server.port = port
    return server
