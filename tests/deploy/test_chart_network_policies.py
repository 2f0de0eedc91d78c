"""NetworkPolicies of the gateway, monitor and notifier: off by default; when on, their
selectors match exactly their own pods and their rules name ports the pods expose."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.tools import CHART, by_kind, one, pod_spec, render, render_error, validate_strict

POLICIES = ("networkPolicy.gateway.enabled=true", "networkPolicy.monitor.enabled=true")
NOTIFIER_ON = ("notifier.enabled=true", "networkPolicy.notifier.enabled=true")
HA = CHART / "ci" / "ha-values.yaml"
NOTIFIER = CHART / "ci" / "notifier-values.yaml"
SMTP_AND_HTTPS = [{"port": p, "protocol": "TCP"} for p in (443, 25, 465, 587)]


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    pods = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["metadata"][
            "labels"
        ]
        for d in by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")
    }
    for pod in by_kind(docs, "Pod"):  # the helm test pod
        pods[pod["metadata"]["labels"]["app.kubernetes.io/component"]] = pod["metadata"]["labels"]
    return pods


def selected(selector: dict[str, Any], pods: dict[str, dict[str, str]]) -> set[str]:
    match = selector["matchLabels"]
    return {name for name, labels in pods.items() if match.items() <= labels.items()}


def port_names(docs: list[dict[str, Any]], component: str) -> set[str]:
    container = pod_spec(one(docs, "Deployment", component))["containers"][0]
    return {p["name"] for p in container["ports"]}


@pytest.mark.parametrize("sets", [(), ("notifier.enabled=true",)], ids=["default", "notifier"])
def test_service_policies_are_off_by_default(sets: tuple[str, ...]) -> None:
    components = [
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in by_kind(render(sets=sets), "NetworkPolicy")
    ]
    assert components == ["redis"]


@pytest.mark.parametrize("values", [(), (HA,), (HA, NOTIFIER)], ids=["default", "ha", "notifier"])
def test_policy_selectors_match_only_their_own_pods(values: tuple[Any, ...]) -> None:
    docs = render(values, sets=(*POLICIES, *NOTIFIER_ON))
    validate_strict(docs)
    pods = pod_labels(docs)
    policies = {
        p["metadata"]["labels"]["app.kubernetes.io/component"]: p
        for p in by_kind(docs, "NetworkPolicy")
    }
    assert set(policies) == {"gateway", "monitor", "notifier", "redis"}
    for component, policy in policies.items():
        assert selected(policy["spec"]["podSelector"], pods) == {component}
    for component in ("gateway", "monitor", "notifier"):
        spec = policies[component]["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        for rule in spec["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= port_names(docs, component)
        # Egress to Redis selects exactly the Redis pods, on the ports they listen on.
        redis_rules = [
            r
            for r in spec["egress"]
            if any("podSelector" in t and "namespaceSelector" not in t for t in r["to"])
        ]
        (redis_rule,) = redis_rules
        (peer,) = redis_rule["to"]
        assert selected(peer["podSelector"], pods) == {"redis"}
        redis_ports = {
            p["containerPort"]
            for c in pod_spec(one(docs, "StatefulSet", "redis"))["containers"]
            for p in c["ports"]
        }
        assert {p["port"] for p in redis_rule["ports"]} == redis_ports
        dns = [r for r in spec["egress"] if {p["port"] for p in r["ports"]} == {53}]
        assert {p["protocol"] for p in dns[0]["ports"]} == {"UDP", "TCP"}


def test_gateway_accepts_the_ingress_controller_prometheus_and_helm_test() -> None:
    docs = render(sets=POLICIES)
    pods = pod_labels(docs)
    ingress = one(docs, "NetworkPolicy", "gateway")["spec"]["ingress"]
    by_port = {rule["ports"][0]["port"]: rule["from"] for rule in ingress}
    assert set(by_port) == {"http", "metrics"}
    controller = {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert by_port["http"][0]["namespaceSelector"]["matchLabels"] == controller
    prometheus = {"kubernetes.io/metadata.name": "monitoring"}
    assert by_port["metrics"][0]["namespaceSelector"]["matchLabels"] == prometheus
    for peers in by_port.values():
        in_release = [p for p in peers if "podSelector" in p and "namespaceSelector" not in p]
        assert [selected(p["podSelector"], pods) for p in in_release] == [{"test"}]


def test_monitor_accepts_only_prometheus_and_reaches_the_exchange() -> None:
    docs = render(sets=POLICIES)
    spec = one(docs, "NetworkPolicy", "monitor")["spec"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    exchange = [r for r in spec["egress"] if r["ports"] == [{"port": 443, "protocol": "TCP"}]]
    assert exchange[0]["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    gateway_egress = one(docs, "NetworkPolicy", "gateway")["spec"]["egress"]
    assert not [r for r in gateway_egress if r["ports"][0]["port"] == 443]


def test_metrics_on_the_main_port_when_metrics_port_is_zero() -> None:
    docs = render(sets=(*POLICIES, "gateway.metricsPort=0"))
    ingress = one(docs, "NetworkPolicy", "gateway")["spec"]["ingress"]
    assert [r["ports"][0]["port"] for r in ingress] == ["http", "http"]


def test_external_redis_needs_its_egress_rule() -> None:
    error = render_error((*POLICIES, "redis.enabled=false", "redis.url=redis://r.example:6379/0"))
    assert "networkPolicy.externalRedisEgress" in error
    docs = render(
        sets=(
            *POLICIES,
            "redis.enabled=false",
            "redis.url=redis://r.example:6379/0",
            "networkPolicy.externalRedisEgress[0].to[0].ipBlock.cidr=10.20.0.0/16",
            "networkPolicy.externalRedisEgress[0].ports[0].port=6379",
        )
    )
    validate_strict(docs)
    egress = one(docs, "NetworkPolicy", "monitor")["spec"]["egress"]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in [t for r in egress for t in r["to"]]


def test_gateway_policy_without_client_sources_fails() -> None:
    error = render_error((*POLICIES, "networkPolicy.ingressFrom=null"))
    assert "no client could reach the gateway" in error


def test_schema_rejects_typos_in_network_policy_values() -> None:
    assert "values don't meet" in render_error(("networkPolicy.gateway.enable=true",))
    assert "values don't meet" in render_error(("networkPolicy.ingressFrom[0].podSelectr.a=b",))


def test_notifier_accepts_only_prometheus_and_reaches_redis_dns_and_destinations() -> None:
    docs = render((NOTIFIER,))
    validate_strict(docs)
    spec = one(docs, "NetworkPolicy", "notifier")["spec"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    by_ports = {tuple(p["port"] for p in r["ports"]): r["to"] for r in spec["egress"]}
    assert set(by_ports) == {(53, 53), (6379,), (443, 25, 465, 587), (587,)}
    public = by_ports[(443, 25, 465, 587)][0]["ipBlock"]
    assert public["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in public["except"]
    assert by_ports[(587,)] == [{"ipBlock": {"cidr": "10.30.0.25/32"}}], "extraEgress appended"
    # HTTPS and SMTP are the notifier's alone: the gateway's and monitor's egress stay as they were.
    others = render(sets=(*POLICIES, *NOTIFIER_ON))
    for component in ("gateway", "monitor"):
        ports = {
            p["port"]
            for r in one(others, "NetworkPolicy", component)["spec"]["egress"]
            for p in r["ports"]
        }
        assert not ports & {25, 465, 587}, component


def test_notifier_destination_egress_is_configurable() -> None:
    docs = render(
        sets=(
            *NOTIFIER_ON,
            "networkPolicy.notifier.destinationsEgress[0].to[0].ipBlock.cidr=203.0.113.7/32",
            "networkPolicy.notifier.destinationsEgress[0].ports[0].port=8443",
        )
    )
    validate_strict(docs)
    egress = one(docs, "NetworkPolicy", "notifier")["spec"]["egress"]
    ports = {p["port"] for r in egress for p in r["ports"]}
    assert ports == {53, 6379, 8443}, "the default HTTPS/SMTP rule is replaced, not kept"


def test_notifier_policy_with_external_redis_needs_its_egress_rule() -> None:
    sets = (*NOTIFIER_ON, "redis.enabled=false", "redis.url=redis://r.example:6379/0")
    assert "networkPolicy.externalRedisEgress" in render_error(sets)
    docs = render(
        sets=(
            *sets,
            "networkPolicy.externalRedisEgress[0].to[0].ipBlock.cidr=10.20.0.0/16",
            "networkPolicy.externalRedisEgress[0].ports[0].port=6379",
        )
    )
    egress = one(docs, "NetworkPolicy", "notifier")["spec"]["egress"]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in [t for r in egress for t in r["to"]]
