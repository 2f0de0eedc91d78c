"""A real Prometheus (127.0.0.1, 1 s scrapes and rule evaluation) scraping a real gateway
and monitor with the labels a ServiceMonitor gives them, loaded with the chart's rendered
rules: every dashboard query and every alert expression parses and returns series, then
a Redis outage makes the Redis and relay alerts active and a killed monitor MonitorDown.

Active means pending or firing: the `for:` durations (minutes) are promtool's to test
(test_alert_rules.py); here the point is that the expressions match what the services
really export, under the labels they really get.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.prom import (
    JOBS,
    NAMESPACE,
    alert_rules,
    dashboard,
    dashboard_queries,
    measured_part,
    require_binary,
    write_rules,
)
from tests.support.redis_server import free_port, own_redis
from tests.support.services import ServiceProcess, http_get

BUDGET_S = 90.0
# Grafana's $__rate_interval: four scrape intervals.
RATE_INTERVAL = "4s"


def scrape_config(services: dict[str, ServiceProcess]) -> dict[str, Any]:
    """What the Prometheus Operator makes of the chart's ServiceMonitors, as static targets."""
    jobs = [
        {
            "job_name": JOBS[name],
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{proc.port}"],
                    "labels": {
                        "namespace": NAMESPACE,
                        "service": JOBS[name],
                        "pod": f"{JOBS[name]}-0",
                        "container": name,
                        "endpoint": "http",
                    },
                }
            ],
        }
        for name, proc in services.items()
    ]
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": jobs,
    }


class Prometheus:
    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        write_rules(folder)
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.folder = folder
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3) -> None:
        """Start on a free port. The port is free when picked, but it is in the ephemeral
        range, so any outgoing connection may take it before Prometheus binds (seen in CI):
        then Prometheus exits at once and it starts again on another."""
        for _ in range(attempts):
            self.port = free_port()
            with (self.folder / "prometheus.log").open("ab") as out:
                self.proc = subprocess.Popen(
                    [
                        require_binary("prometheus"),
                        f"--config.file={self.folder / 'prometheus.yml'}",
                        f"--storage.tsdb.path={self.folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            wait_until(self._ready_or_exited, 20, "Prometheus ready", self)
            if self.proc.poll() is None:
                return
            assert "address already in use" in self.logs(), self.logs()
        raise AssertionError(f"Prometheus found no free port in {attempts} tries")

    def _ready_or_exited(self) -> bool:
        return (self.proc is not None and self.proc.poll() is not None) or self._get("/-/ready")[
            0
        ] == 200

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def _get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            status, body = http_get(f"http://127.0.0.1:{self.port}{path}", 5.0)
        except OSError:
            return 0, {}
        return status, json.loads(body) if body.startswith(b"{") else {}

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant query's result; an expression Prometheus cannot parse fails the test."""
        status, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert status == 200 and body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def active_alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")[1]["data"]["alerts"]
        return alerts

    def logs(self) -> str:
        return (self.folder / "prometheus.log").read_text()[-3000:]


def wait_until(
    check: Callable[[], object], timeout_s: float, what: object, prom: Prometheus
) -> None:
    """Poll ``check``; ``what`` may be a callable, so the failure names what is left."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            named = what() if callable(what) else what
            raise AssertionError(f"not {named} within {timeout_s}s\n{prom.logs()}")
        time.sleep(0.25)


@contextmanager
def running_stack(folder: Path) -> Iterator[tuple[Any, dict[str, ServiceProcess], Prometheus]]:
    with own_redis() as redis:
        env = {"REDIS_URL": redis.url, "TICK_INTERVAL_S": "0.2"}
        services = {name: ServiceProcess(name, env) for name in ("gateway", "monitor")}
        prom = Prometheus(folder, scrape_config(services))
        try:
            for proc in services.values():
                proc.start(wait_ready=False)
            for proc in services.values():
                proc.wait_ready(45)
            prom.start()
            yield redis, services, prom
        finally:
            prom.stop()
            for proc in services.values():
                proc.kill()


def queries_to_check() -> list[tuple[str, str]]:
    """(where, expr) for every panel, template variable and alert expression."""
    checks = [(f"panel {title!r}", expr) for title, expr in dashboard_queries(RATE_INTERVAL)]
    for variable in dashboard()["templating"]["list"]:
        query = variable["query"]
        text = query.get("query", "") if isinstance(query, dict) else ""
        found = re.fullmatch(r"label_values\((\w+), *(\w+)\)", text)
        if found:
            checks.append((f"variable {variable['name']}", f"{found[1]}{{{found[2]}!=''}}"))
    for rule in alert_rules():
        checks.append((f"alert {rule['alert']}", measured_part(rule["expr"])))
    return checks


def alert_active(prom: Prometheus, name: str, **labels: str) -> bool:
    return any(
        alert["labels"]["alertname"] == name
        and labels.items() <= alert["labels"].items()
        and alert["state"] in ("pending", "firing")
        for alert in prom.active_alerts()
    )


def test_real_prometheus_evaluates_every_query_and_fires_on_outages(tmp_path: Path) -> None:
    require_binary("promtool")  # the same package; CI must have both
    started = time.monotonic()
    with running_stack(tmp_path) as (redis, services, prom):
        up = f'up{{namespace="{NAMESPACE}"}} == 1'
        wait_until(lambda: len(prom.query(up)) == 2, 15, "scraping both services", prom)
        for rule in alert_rules():
            prom.query(rule["expr"])  # parses, whatever it returns now
        pending = {expr: where for where, expr in queries_to_check()}

        def all_return_series() -> bool:
            for expr in list(pending):
                if prom.query(expr):
                    del pending[expr]
            return not pending

        wait_until(all_return_series, 30, lambda: f"returning series: {pending}", prom)
        gateway_pod = f"{JOBS['gateway']}-0"
        assert not alert_active(prom, "QuantumSignalsRelayDown")
        assert not alert_active(prom, "QuantumSignalsRedisUnreachable")
        assert not alert_active(prom, "QuantumSignalsMonitorDown")

        redis.stop()
        for name in ("QuantumSignalsRelayDown", "QuantumSignalsRedisUnreachable"):
            wait_until(partial(alert_active, prom, name, pod=gateway_pod), 20, name, prom)
        services["monitor"].kill()
        wait_until(lambda: alert_active(prom, "QuantumSignalsMonitorDown"), 15, "MonitorDown", prom)
        assert not alert_active(prom, "QuantumSignalsGatewayDown")
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_S, f"took {elapsed:.1f}s"
