"""Metrics and probes on an internal port that no Ingress or HTTPRoute routes."""

from __future__ import annotations

from typing import Any

from tests.deploy.tools import (
    CHART,
    by_kind,
    env_of,
    one,
    pod_spec,
    render,
    render_error,
    validate_strict,
)

HTTPROUTE = CHART / "ci" / "httproute-values.yaml"
MONITORING = CHART / "ci" / "monitoring-values.yaml"


def container_ports(docs: list[dict[str, Any]], component: str) -> dict[str, int]:
    container = pod_spec(one(docs, "Deployment", component))["containers"][0]
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def probe_ports(docs: list[dict[str, Any]], component: str) -> set[str]:
    container = pod_spec(one(docs, "Deployment", component))["containers"][0]
    return {
        container[p]["httpGet"]["port"] for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }


def test_metrics_port_is_on_by_default_and_the_probes_use_it() -> None:
    docs = render()
    validate_strict(docs)
    for component in ("gateway", "monitor"):
        assert one(docs, "ConfigMap", component)["data"]["METRICS_PORT"] == "9090"
        assert container_ports(docs, component)["metrics"] == 9090
        assert probe_ports(docs, component) == {"metrics"}
    assert container_ports(docs, "gateway")["http"] == 8000
    assert "http" not in container_ports(docs, "monitor"), "the monitor has no public port"


def test_service_monitors_scrape_the_metrics_port() -> None:
    docs = render((MONITORING,))
    for component in ("gateway", "monitor"):
        monitor = one(docs, "ServiceMonitor", component)
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        service_ports = {p["name"]: p for p in one(docs, "Service", component)["spec"]["ports"]}
        assert service_ports["metrics"]["targetPort"] == "metrics"


def test_no_ingress_or_route_reaches_the_metrics_port() -> None:
    docs = render((CHART / "ci" / "ha-values.yaml",)) + render((HTTPROUTE,))
    service = one(render(), "Service", "gateway")
    public = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert set(public) == {"http", "metrics"}
    for ingress in by_kind(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["port"] == {"name": "http"}
    routes = by_kind(docs, "HTTPRoute")
    assert routes
    for route in routes:
        for rule in route["spec"]["rules"]:
            assert [b["port"] for b in rule["backendRefs"]] == [public["http"]]


def test_metrics_port_zero_serves_everything_on_the_main_port() -> None:
    docs = render((MONITORING,), sets=("gateway.metricsPort=0", "monitor.metricsPort=0"))
    assert one(docs, "ConfigMap", "gateway")["data"]["METRICS_PORT"] == "0"
    assert probe_ports(docs, "gateway") == {"http"}
    assert set(container_ports(docs, "gateway")) == {"http"}
    assert one(docs, "ServiceMonitor", "gateway")["spec"]["endpoints"][0]["port"] == "http"
    assert [p["name"] for p in one(docs, "Service", "gateway")["spec"]["ports"]] == ["http"]
    assert container_ports(docs, "monitor") == {"metrics": 8001}


def test_helm_test_checks_readiness_on_the_metrics_port() -> None:
    pod = by_kind(render(), "Pod")[0]
    env = env_of(pod["spec"]["containers"][0])
    assert env["READYZ_URL"]["value"] == "http://qs-quantum-signals-gateway:9090/readyz"
    pod = by_kind(render(sets=("gateway.metricsPort=0",)), "Pod")[0]
    assert "READYZ_URL" not in env_of(pod["spec"]["containers"][0])


def test_metrics_port_equal_to_port_fails_with_a_fix() -> None:
    error = render_error(("gateway.metricsPort=8000",))
    assert "gateway: metricsPort equals port" in error
    assert "gateway.metricsPort another port" in error
    assert "monitor: metricsPort equals port" in render_error(("monitor.metricsPort=8001",))
