"""What a gateway's captured stderr/stdout may contain after hostile clients."""

from __future__ import annotations

from tests.support.services import ServiceProcess


def error_lines(gateway: ServiceProcess) -> list[str]:
    """Lines at ERROR or worse, JSON records or not, and every traceback line."""
    text = gateway.log_path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line]
    bad += [str(e) for e in gateway.log_events() if e.get("level") in ("error", "critical")]
    return bad


def assert_clean_log(gateway: ServiceProcess) -> None:
    assert error_lines(gateway) == [], gateway.logs()
