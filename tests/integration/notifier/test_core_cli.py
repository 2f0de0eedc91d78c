"""``python -m notifier`` on the outside: command line, start-up without Redis, exit codes
(the same as the other services'), and a port already in use."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from common.cli import EXIT_FAILURE, EXIT_OK, EXIT_REDIS_UNAVAILABLE, EXIT_USAGE
from tests.integration.lifecycle.processes import json_lines, run, start
from tests.integration.notifier.conftest import SECRET, SECRET_ENV, write_config


def config(tmp_path: Path) -> dict[str, str]:
    path = write_config(tmp_path / "n.yaml", "http://127.0.0.1:9/hook")
    return {"NOTIFIER_CONFIG": str(path), SECRET_ENV: SECRET}


def test_help_lists_the_notifier_settings_and_arguments_are_refused() -> None:
    shown = run("notifier", "--help")
    assert shown.returncode == EXIT_OK
    for name in ("NOTIFIER_CONFIG", "NOTIFIER_CONSUMER", "NOTIFIER_CLAIM_IDLE_MS"):
        assert name in shown.stdout
    refused = run("notifier", "--config", "x.yaml")
    assert refused.returncode == EXIT_USAGE
    listed = run("notifier", "dead-letters", "--help")
    assert listed.returncode == EXIT_OK and "list" in listed.stdout and "retry" in listed.stdout


def test_redis_unreachable_ends_in_one_json_line_and_exit_69(tmp_path: Path) -> None:
    result = run(
        "notifier", REDIS_STARTUP_ATTEMPTS="2", REDIS_BACKOFF_MAX_S="0.2", **config(tmp_path)
    )
    assert result.returncode == EXIT_REDIS_UNAVAILABLE, result.stderr
    records = json_lines(result.stderr)
    failures = [r for r in records if r["level"] in ("error", "critical")]
    assert failures == [records[-1]], result.stderr
    assert failures[0]["event"] == "startup_failed"
    assert failures[0]["reason"] == "redis_unavailable"
    assert failures[0]["service"] == "notifier"


def test_sigterm_while_waiting_for_redis_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "notifier.log"
    proc = start("notifier", log, REDIS_STARTUP_ATTEMPTS="10", **config(tmp_path))
    try:
        deadline = time.monotonic() + 30
        while '"redis_unreachable"' not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == EXIT_OK, log.read_text()
    assert json_lines(log.read_text())[-1]["event"] == "startup_cancelled"


def test_a_port_in_use_ends_in_one_json_line_and_exit_1(tmp_path: Path, redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("notifier", REDIS_URL=redis_url, PORT=str(port), **config(tmp_path))
    assert result.returncode == EXIT_FAILURE, result.stderr
    records = json_lines(result.stderr)
    assert records[-1]["event"] == "startup_failed"
    assert records[-1]["reason"] == "cannot_listen"
