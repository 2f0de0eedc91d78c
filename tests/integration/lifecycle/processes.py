"""Run ``python -m gateway`` / ``python -m monitor`` with a Redis that is not there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.redis_server import free_port
from tests.support.services import ROOT

SERVICES = ("gateway", "monitor")


def unreachable_env(**extra: str) -> dict[str, str]:
    """An environment whose Redis and HTTP ports are free ones on 127.0.0.1, never 6379,
    so a service that ignores its command line still cannot reach anything real."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "REDIS_STARTUP_ATTEMPTS": "1",
        **extra,
    }


def run(module: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=unreachable_env(**env),
        timeout=60,
        check=False,
    )


def start(module: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=unreachable_env(**env),
        )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object; fails naming the first line that is not."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n--- whole output:\n{text}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records
