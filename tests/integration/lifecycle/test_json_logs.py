"""With LOG_FORMAT=json every line a service writes is one JSON object naming the service:
our events, uvicorn's and other libraries' stdlib records, warnings and tracebacks."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServiceFactory
from tests.integration.lifecycle.processes import SERVICES, json_lines
from tests.support.services import ROOT

# Imported by the service's interpreter at start-up (sitecustomize): once the test touches
# the trigger file, a thread logs the way redis-py, ccxt and python-engineio do (stdlib
# loggers, one with a traceback), warns, and dies with an uncaught exception.
LIBRARY_NOISE = textwrap.dedent(
    """
    import logging, os, pathlib, threading, time, warnings

    def _emit():
        trigger = pathlib.Path(os.environ["QS_TEST_LOG_TRIGGER"])
        while not trigger.exists():
            time.sleep(0.02)
        try:
            raise ConnectionError("exchange said no")
        except ConnectionError:
            logging.getLogger("ccxt.base.exchange").exception("fetch_ohlcv failed")
        logging.getLogger("redis.connection").warning("pool %s", "exhausted")
        # python-engineio attaches a plain-text handler of its own to this logger.
        logging.getLogger("engineio.server").error("engineio %s", "refused")
        warnings.warn("a library warns", UserWarning, stacklevel=1)
        raise RuntimeError("a library thread died")

    threading.Thread(target=_emit, name="library-thread", daemon=True).start()
    """
)

MONITOR_FAST = {"symbols": "A", "tick_interval_s": 0.05, "lease_ttl_s": 1.5}


def send_garbage_http(port: int) -> None:
    """uvicorn answers 400 and logs 'Invalid HTTP request received.' through the stdlib."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        sock.recv(1024)


def find(records: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    for record in records:
        if all(record.get(k) == v for k, v in match.items()):
            return record
    raise AssertionError(f"no record with {match} in {records}")


@pytest.mark.parametrize("module", SERVICES)
def test_every_line_is_json_and_names_the_service(
    module: str, service_factory: ServiceFactory, tmp_path: Path
) -> None:
    (tmp_path / "sitecustomize.py").write_text(LIBRARY_NOISE)
    trigger = tmp_path / "trigger"
    service = service_factory(
        module,
        pythonpath=f"{tmp_path}:{ROOT / 'services'}",
        qs_test_log_trigger=str(trigger),
        **(MONITOR_FAST if module == "monitor" else {}),
    )
    send_garbage_http(service.port)
    trigger.touch()
    service.wait_for(lambda: "a library thread died" in service.log_path.read_text(), 10, "logs")
    time.sleep(0.1)
    assert service.terminate() == 0

    records = json_lines(service.log_path.read_text())
    assert {r.get("service") for r in records} == {module}
    assert find(records, logger="uvicorn.error", event="Invalid HTTP request received.")
    assert find(records, event="shutdown_requested")["level"] == "info"
    failed = find(records, logger="ccxt.base.exchange", event="fetch_ohlcv failed")
    assert failed["level"] == "error"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "ConnectionError: exchange said no" in failed["exception"]
    assert find(records, logger="redis.connection", event="pool exhausted")["level"] == "warning"
    assert find(records, logger="engineio.server", event="engineio refused")["level"] == "error"
    warned = find(records, logger="py.warnings")
    assert "a library warns" in warned["event"]
    died = find(records, event="uncaught_exception", thread="library-thread")
    assert died["level"] == "critical" and "a library thread died" in json.dumps(died)
