"""Run the real services as subprocesses (``python -m gateway`` / ``python -m monitor``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class ServiceProcess:
    def __init__(self, module: str, env: dict[str, str], port: int | None = None) -> None:
        self.module = module
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT / "services"),
            **env,
        }
        self.log_path = Path(tempfile.mkstemp(prefix=f"qs-{module}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout_s: float = 20.0) -> ServiceProcess:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if wait_ready:
            self.wait_ready(timeout_s)
        return self

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        self.wait_for(lambda: self.readyz() == 200, timeout_s, "ready")

    def wait_for(self, predicate: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.module} exited early:\n{self.logs()}")
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.module} not {what} within {timeout_s}s:\n{self.logs()}")

    def readyz(self) -> int:
        try:
            return http_get(f"{self.base_url}/readyz", 1.0)[0]
        except OSError:
            return 0

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        _, body = http_get(f"{self.base_url}/metrics")
        total = 0.0
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == name and (labels or {}).items() <= sample.labels.items():
                    total += sample.value
        return total

    def log_events(self) -> list[dict[str, object]]:
        events = []
        for line in self.log_path.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def logs(self) -> str:
        return self.log_path.read_text()[-4000:]

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(15)
            except subprocess.TimeoutExpired:
                self.kill()
