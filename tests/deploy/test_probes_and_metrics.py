"""The chart against the real services: probe paths/ports are routes the apps serve, every
metric the dashboard and alerts use is one the running services export, and the chart's
helm-test smoke script passes against a real gateway."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.tools import CHART, one, render, settings_of
from tests.support.redis_server import ProcessRedis
from tests.support.services import ServiceProcess, http_get

METRIC_RE = re.compile(r"\bqs_[a-z0-9_]+\b")


def apps_by_port(component: str, config: dict[str, str]) -> dict[int, Any]:
    """The ASGI app each port of the process serves, built as ``python -m`` builds them
    from the chart's PORT and METRICS_PORT (no lifespan, no Redis)."""
    ports = {"port": int(config["PORT"]), "metrics_port": int(config["METRICS_PORT"])}
    if component == "notifier":
        from notifier.config import NotifierConfig
        from notifier.service import Notifier
        from notifier.settings import NotifierSettings

        server = Notifier(NotifierSettings(**ports), NotifierConfig()).http  # type: ignore[arg-type]
        return {server.config.port: server.config.app}
    if component == "gateway":
        from gateway.__main__ import metrics_server
        from gateway.app import Gateway
        from gateway.settings import GatewaySettings

        settings = GatewaySettings(**ports)  # type: ignore[arg-type]
        gateway = Gateway(settings)
        apps: dict[int, Any] = {settings.port: gateway.app}
        internal = metrics_server(gateway, settings)
        if internal is not None:
            apps[settings.metrics_port] = internal.config.app
        return apps
    from monitor.settings import MonitorSettings
    from monitor.worker import Worker

    http = Worker(MonitorSettings(**ports)).http  # type: ignore[arg-type]
    return {http.config.port: http.config.app}


async def served(app: Any, path: str) -> bool:
    """The app answers GET ``path`` with something other than 404/405 (no lifespan, no Redis)."""
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        status = (await client.get(path)).status_code
    return status not in (404, 405)


@pytest.mark.parametrize(
    "sets",
    [
        ("notifier.enabled=true",),
        (
            "notifier.enabled=true",
            "gateway.metricsPort=0",
            "monitor.metricsPort=0",
            "notifier.metricsPort=0",
        ),
    ],
    ids=["metrics-port", "metrics-port-0"],
)
@pytest.mark.parametrize("component", ["gateway", "monitor", "notifier"])
async def test_probes_hit_real_routes_on_the_container_port(
    component: str, sets: tuple[str, ...]
) -> None:
    docs = render(sets=sets)
    container = one(docs, "Deployment", component)["spec"]["template"]["spec"]["containers"][0]
    config = settings_of(docs, component)
    apps = apps_by_port(component, config)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert set(ports.values()) == set(apps), "every container port is one the process serves"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        app = apps[ports[get["port"]]]
        assert await served(app, get["path"]), f"{component} {probe}: {get['path']} is not served"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    scraped = {"gateway": "http", "monitor": "metrics", "notifier": "metrics"}[component]
    if int(config["METRICS_PORT"]):
        scraped = "metrics"
        public = int(config["PORT"])
        if public in apps:  # the gateway: its public port no longer answers /metrics
            assert not await served(apps[public], "/metrics")
            assert not await served(apps[public], "/readyz")
    assert await served(apps[ports[scraped]], "/metrics")
    assert not await served(apps[ports[scraped]], "/no-such-probe"), "the check must fail"


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, ServiceProcess]]:
    redis = ProcessRedis()
    redis.start()
    env = {"REDIS_URL": redis.url, "TICK_INTERVAL_S": "0.2"}
    procs = {name: ServiceProcess(name, env) for name in ("gateway", "monitor")}
    try:
        for proc in procs.values():
            proc.start(wait_ready=False)
        for proc in procs.values():
            proc.wait_ready(45)
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()
        redis.stop()


def exported(proc: ServiceProcess) -> set[str]:
    _, body = http_get(f"{proc.base_url}/metrics")
    return {
        sample.name
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def used_metrics() -> dict[str, set[str]]:
    dashboard = json.loads((CHART / "files" / "dashboards" / "quantum-signals.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [
        v["query"]["query"]
        for v in dashboard["templating"]["list"]
        if isinstance(v.get("query"), dict)
    ]
    docs = render((CHART / "ci" / "monitoring-values.yaml",))
    rules = [
        r
        for d in docs
        if d["kind"] == "PrometheusRule"
        for g in d["spec"]["groups"]
        for r in g["rules"]
    ]
    hpa_docs = render((CHART / "ci" / "ha-values.yaml",))
    hpa_metrics = [
        m["pods"]["metric"]["name"]
        for d in hpa_docs
        if d["kind"] == "HorizontalPodAutoscaler"
        for m in d["spec"]["metrics"]
        if m["type"] == "Pods"
    ]
    return {
        "dashboard": {m for e in exprs for m in METRIC_RE.findall(e)},
        "alerts": {m for r in rules for m in METRIC_RE.findall(r["expr"])},
        "hpa": set(hpa_metrics),
    }


def test_dashboard_alerts_and_hpa_only_use_exported_metrics(
    services: dict[str, ServiceProcess],
) -> None:
    # Wait until the monitor has published, so labelled series exist too.
    services["monitor"].wait_for(
        lambda: "qs_monitor_leases_held" in exported(services["monitor"]), 20, "exporting"
    )
    available = exported(services["gateway"]) | exported(services["monitor"])
    used = used_metrics()
    assert used["dashboard"] and used["alerts"] and used["hpa"]
    for where, names in used.items():
        missing = sorted(names - available)
        assert not missing, f"{where} uses metrics no service exports: {missing}"
    rule_names = {
        r["alert"]
        for d in render((CHART / "ci" / "monitoring-values.yaml",))
        if d["kind"] == "PrometheusRule"
        for g in d["spec"]["groups"]
        for r in g["rules"]
    }
    assert rule_names == {
        "QuantumSignalsRelayDown",
        "QuantumSignalsRedisUnreachable",
        "QuantumSignalsNoSignals",
        "QuantumSignalsRejectedMessages",
        "QuantumSignalsRelayLatencyHigh",
        "QuantumSignalsMarketDataStale",
        "QuantumSignalsMonitorDown",
        "QuantumSignalsGatewayDown",
        "QuantumSignalsNoSymbolLeases",
    }


def test_helm_test_smoke_script_passes_against_a_real_gateway(
    services: dict[str, ServiceProcess],
) -> None:
    result = subprocess.run(
        [sys.executable, str(CHART / "files" / "smoke.py")],
        env={
            "GATEWAY_URL": services["gateway"].base_url,
            "TRANSPORTS": "polling,websocket",
            "WAIT_FOR_SIGNAL_S": "0",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   socket.io connect: 40{" in result.stdout


def test_smoke_script_fails_when_the_gateway_is_unreachable() -> None:
    result = subprocess.run(
        [sys.executable, str(CHART / "files" / "smoke.py")],
        env={"GATEWAY_URL": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
