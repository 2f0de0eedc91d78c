"""Start-up without Redis: a stop request ends it at once, giving up ends in one JSON line."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from common.cli import EXIT_FAILURE, EXIT_INCOMPATIBLE_LIBRARY, EXIT_OK, EXIT_REDIS_UNAVAILABLE
from tests.integration.lifecycle.processes import SERVICES, json_lines, run, start
from tests.support.services import ROOT


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        assert proc.poll() is None, f"exited early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} within {timeout_s}s:\n{log.read_text()}"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("module", SERVICES)
def test_a_stop_signal_while_waiting_for_redis_exits_0_within_1s(
    module: str, signum: signal.Signals, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    # Ten attempts with the default backoff would take ~17 s to give up.
    proc = start(module, log, REDIS_STARTUP_ATTEMPTS="10")
    try:
        wait_for_line(log, '"redis_unreachable"', proc, 30)
        sent = time.monotonic()
        proc.send_signal(signum)
        code = proc.wait(10)
        took_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    assert code == EXIT_OK, output
    assert took_s < 1.0, f"took {took_s:.2f}s\n{output}"
    records = json_lines(output)
    assert records[-1]["event"] == "startup_cancelled"
    assert not [r for r in records if r["level"] in ("error", "critical")], output


@pytest.mark.parametrize("module", SERVICES)
def test_redis_unreachable_ends_in_one_json_line_and_its_exit_code(module: str) -> None:
    result = run(module, REDIS_STARTUP_ATTEMPTS="2", REDIS_BACKOFF_MAX_S="0.2")
    assert result.returncode == EXIT_REDIS_UNAVAILABLE, result.stderr
    assert result.stdout == ""
    records = json_lines(result.stderr)
    assert [r["event"] for r in records if r["event"] == "redis_unreachable"] == [
        "redis_unreachable"
    ] * 2
    failures = [r for r in records if r["level"] in ("error", "critical")]
    assert failures == [records[-1]], result.stderr
    assert failures[0]["event"] == "startup_failed"
    assert failures[0]["reason"] == "redis_unavailable"
    assert failures[0]["exit_code"] == EXIT_REDIS_UNAVAILABLE
    assert failures[0]["service"] == module
    assert "Traceback" not in result.stderr


# A future asyncio whose Queue.put() no longer goes through put_nowait(), an assumption the
# gateway's direct writes rely on (gateway/wire/compat.py).
BROKEN_QUEUE = """
import asyncio

async def put(self, item):
    self._put(item)
    self._unfinished_tasks += 1
    self._finished.clear()
    self._wakeup_next(self._getters)

asyncio.Queue.put = put
"""


def test_an_incompatible_library_ends_the_gateway_in_one_json_line(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BROKEN_QUEUE)
    result = run("gateway", PYTHONPATH=f"{tmp_path}:{ROOT / 'services'}")
    assert result.returncode == EXIT_INCOMPATIBLE_LIBRARY, result.stderr
    records = json_lines(result.stderr)
    assert len(records) == 1, result.stderr
    assert records[0]["event"] == "startup_failed"
    assert records[0]["reason"] == "incompatible_library"
    assert records[0]["exit_code"] == EXIT_INCOMPATIBLE_LIBRARY
    assert records[0]["error"].startswith("asyncio "), records[0]
    assert "put() bypassed put_nowait()" in records[0]["error"]


# A python-engineio release without the name gateway/wire/direct.py reads when it is imported.
REMOVED_NAME = """
import engineio.payload

del engineio.payload.Payload.max_decode_packets
"""


def test_a_name_removed_from_a_library_is_named_not_an_import_traceback(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(REMOVED_NAME)
    result = run("gateway", PYTHONPATH=f"{tmp_path}:{ROOT / 'services'}")
    assert result.returncode == EXIT_INCOMPATIBLE_LIBRARY, result.stderr
    records = json_lines(result.stderr)
    assert len(records) == 1, result.stderr
    assert records[0]["event"] == "startup_failed"
    assert records[0]["reason"] == "incompatible_library"
    error = records[0]["error"]
    assert error.startswith("python-engineio "), error
    assert "assumption 'Payload.max_decode_packets is the client's decode limit'" in error
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("module", SERVICES)
def test_a_port_in_use_ends_in_one_json_line_and_exit_1(module: str, redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run(module, REDIS_URL=redis_url, PORT=port, TICK_INTERVAL_S="0.2")
    assert result.returncode == EXIT_FAILURE, result.stderr
    records = json_lines(result.stderr)
    # uvicorn's own line with the OS error, then ours; only shutdown lines may follow.
    errors = [r for r in records if r["level"] in ("error", "critical")]
    assert [r.get("logger") for r in errors] == ["uvicorn.error", None], result.stderr
    failed = errors[-1]
    assert failed["event"] == "startup_failed"
    assert failed["reason"] == "cannot_listen"
    assert failed["exit_code"] == EXIT_FAILURE
    assert port in failed["error"]
    assert "Traceback" not in result.stderr
