"""What the rendered chart does, one concern per test (traefik style)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.tools import CHART, by_kind, one, render, render_error, settings_of

HA = CHART / "ci" / "ha-values.yaml"
EXTERNAL = CHART / "ci" / "external-redis-values.yaml"
MONITORING = CHART / "ci" / "monitoring-values.yaml"
NOTIFIER = CHART / "ci" / "notifier-values.yaml"
COMPONENTS = ("gateway", "monitor", "redis")
WITH_NOTIFIER = (*COMPONENTS, "notifier")


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


@pytest.mark.parametrize(
    ("values", "components"),
    [
        ((), COMPONENTS),
        ((HA,), COMPONENTS),
        ((MONITORING,), COMPONENTS),
        # The notifier's selectors never match the gateway/monitor/redis pods, nor theirs it.
        ((NOTIFIER,), WITH_NOTIFIER),
        ((HA, MONITORING, NOTIFIER), WITH_NOTIFIER),
    ],
    ids=["default", "ha", "monitoring", "notifier", "ha-monitoring-notifier"],
)
def test_selectors_never_match_another_component(
    values: tuple[Any, ...], components: tuple[str, ...]
) -> None:
    docs = render(values)
    component_of = "app.kubernetes.io/component"
    pods = {
        w["metadata"]["labels"][component_of]: w["spec"]["template"]["metadata"]["labels"]
        for w in workloads(docs)
    }
    assert set(pods) == set(components)
    selectors: list[tuple[str, str, dict[str, str]]] = []
    for doc in docs:
        component = doc["metadata"]["labels"].get("app.kubernetes.io/component")
        spec = doc.get("spec", {})
        if doc["kind"] == "Service":
            selectors.append((doc["kind"], component, spec["selector"]))
        elif doc["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget", "ServiceMonitor"):
            selectors.append((doc["kind"], component, spec["selector"]["matchLabels"]))
        elif doc["kind"] == "NetworkPolicy":
            selectors.append((doc["kind"], component, spec["podSelector"]["matchLabels"]))
    assert selectors
    for kind, component, selector in selectors:
        assert selector.get("app.kubernetes.io/component") == component, (kind, component)
        for other, labels in pods.items():
            assert selects(selector, labels) == (other == component), (kind, component, other)


def test_default_is_one_gateway_one_monitor_in_chart_redis_no_optional_objects() -> None:
    docs = render(monitoring_api=False)
    assert one(docs, "Deployment", "gateway")["spec"]["replicas"] == 1
    assert one(docs, "Deployment", "monitor")["spec"]["replicas"] == 1
    assert one(docs, "StatefulSet", "redis")
    for kind in (
        "Ingress",
        "HTTPRoute",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
        "PrometheusRule",
    ):
        assert not by_kind(docs, kind), f"{kind} should be off by default"
    policies = [
        p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in by_kind(docs, "NetworkPolicy")
    ]
    assert policies == ["redis"], "only the Redis policy is on by default"
    assert not [d for d in by_kind(docs, "ConfigMap") if "dashboard" in d["metadata"]["name"]]


def test_no_replicas_when_hpa_is_on() -> None:
    docs = render((HA,))
    gateway = one(docs, "Deployment", "gateway")
    assert "replicas" not in gateway["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == gateway["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == 3
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "qs_gateway_connected_clients"
    assert one(docs, "PodDisruptionBudget", "gateway")["spec"]["minAvailable"] == 2
    assert one(docs, "Deployment", "monitor")["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    "sets",
    [
        ("gateway.replicaCount=2", "gateway.stickySessions=false"),
        ("gateway.autoscaling.enabled=true", "gateway.stickySessions=false"),
    ],
)
def test_polling_with_replicas_and_no_affinity_fails_with_a_fix(sets: tuple[str, ...]) -> None:
    error = render_error(sets)
    assert "needs sticky sessions" in error
    assert "gateway.stickySessions=true" in error
    assert "gateway.transports={websocket}" in error


def test_websocket_only_needs_no_affinity() -> None:
    docs = render((CHART / "ci" / "websocket-only-values.yaml",))
    assert one(docs, "Deployment", "gateway")["spec"]["replicas"] == 3
    assert "sessionAffinity" not in one(docs, "Service", "gateway")["spec"]
    annotations = one(docs, "Ingress", "gateway")["metadata"]["annotations"]
    assert "nginx.ingress.kubernetes.io/affinity" not in annotations
    config = one(docs, "ConfigMap", "gateway")["data"]
    assert config["TRANSPORTS"] == "websocket"


def test_ingress_has_websocket_timeouts_and_cookie_affinity() -> None:
    docs = render((HA,))
    ingress = one(docs, "Ingress", "gateway")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == one(docs, "Service", "gateway")["metadata"]["name"]
    # Cookie affinity at the Ingress; ClientIP on the Service would pin every client
    # behind a proxy that uses the Service IP to one pod (docs/deployment.md).
    assert "sessionAffinity" not in one(docs, "Service", "gateway")["spec"]


@pytest.mark.parametrize("values", [(), (HA, NOTIFIER)], ids=["default", "ha-notifier"])
def test_grace_period_covers_prestop_and_drain(values: tuple[Any, ...]) -> None:
    docs = render(values)
    components = [w["metadata"]["labels"]["app.kubernetes.io/component"] for w in workloads(docs)]
    for component in [c for c in components if c != "redis"]:
        spec = pod_spec(one(docs, "Deployment", component))
        container = spec["containers"][0]
        config = settings_of(docs, component)
        drain_s = float(config["SHUTDOWN_GRACE_S"])
        pre_stop = container.get("lifecycle", {}).get("preStop")
        sleep_s = 0.0
        if pre_stop:
            command = pre_stop["exec"]["command"]
            sleep_s = float(command[-1].split("sleep(")[1].rstrip(")"))
        assert spec["terminationGracePeriodSeconds"] >= sleep_s + drain_s + 5, component
    gateway = pod_spec(one(docs, "Deployment", "gateway"))["containers"][0]
    assert "preStop" in gateway["lifecycle"], "gateway must stop receiving clients before SIGTERM"


def test_every_pod_is_locked_down() -> None:
    docs = render((HA,)) + render((MONITORING,)) + render((NOTIFIER,))
    pods = [pod_spec(w) for w in workloads(docs)] + [d["spec"] for d in by_kind(docs, "Pod")]
    assert len(pods) >= 11
    for spec in pods:
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"] and container["resources"]["limits"]


@pytest.mark.parametrize(
    ("values", "clients"),
    [((), ["gateway", "monitor"]), ((NOTIFIER,), ["gateway", "monitor", "notifier"])],
    ids=["default", "notifier"],
)
def test_only_the_services_reach_redis(values: tuple[Any, ...], clients: list[str]) -> None:
    docs = render(values)
    policy = one(docs, "NetworkPolicy", "redis")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    sources = [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policy["spec"]["ingress"]
        for p in rule["from"]
    ]
    assert sorted(sources) == clients


def test_external_redis_from_existing_secret() -> None:
    docs = render((EXTERNAL,))
    assert not by_kind(docs, "StatefulSet")
    assert not by_kind(docs, "NetworkPolicy")
    assert not by_kind(docs, "Secret"), "the chart must never create secrets"
    for component in ("gateway", "monitor"):
        env = env_of(pod_spec(one(docs, "Deployment", component))["containers"][0])
        ref = env["REDIS_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "qs-redis", "key": "redis-url"}
    gateway_env = env_of(pod_spec(one(docs, "Deployment", "gateway"))["containers"][0])
    assert gateway_env["ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "qs-admin"


def test_gateway_secret_settings_come_from_existing_secrets() -> None:
    docs = render(
        sets=(
            "gateway.secretEnv.JWT_SECRET.secret=qs-auth",
            "gateway.secretEnv.JWT_SECRET.key=jwt-secret",
        )
    )
    env = env_of(pod_spec(one(docs, "Deployment", "gateway"))["containers"][0])
    ref = env["JWT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "qs-auth", "key": "jwt-secret"}
    assert not by_kind(docs, "Secret"), "the chart must never create secrets"
    assert "key" in render_error(("gateway.secretEnv.JWT_SECRET.secret=qs-auth",))


def test_external_redis_url_and_its_misconfigurations() -> None:
    docs = render(sets=("redis.enabled=false", "redis.url=redis://cache.example:6379/2"))
    env = env_of(pod_spec(one(docs, "Deployment", "monitor"))["containers"][0])
    assert env["REDIS_URL"]["value"] == "redis://cache.example:6379/2"
    assert "redis.enabled=false" in render_error(("redis.url=redis://x:6379/0",))
    assert "no external Redis" in render_error(("redis.enabled=false",))


def test_in_chart_redis_password_from_secret() -> None:
    docs = render((MONITORING,))
    redis = pod_spec(one(docs, "StatefulSet", "redis"))["containers"][0]
    assert "$(REDIS_PASSWORD)" in redis["args"]
    env = env_of(pod_spec(one(docs, "Deployment", "gateway"))["containers"][0])
    assert env["REDIS_URL"]["value"].startswith("redis://:$(REDIS_PASSWORD)@")
    gateway = pod_spec(one(docs, "Deployment", "gateway"))["containers"][0]
    names = [e["name"] for e in gateway["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL"), "$(VAR) needs VAR first"


def test_redis_persistence_uses_a_claim() -> None:
    redis = one(render((HA,)), "StatefulSet", "redis")
    claim = redis["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "2Gi"
    assert env_of(pod_spec(redis)["containers"][0])["APPENDONLY"]["value"] == "yes"


def test_config_checksum_rolls_pods_on_change() -> None:
    def checksum(*sets: str) -> str:
        annotations = pod_spec_meta(one(render(sets=sets), "Deployment", "gateway"))
        return str(annotations["checksum/config"])

    def pod_spec_meta(doc: dict[str, Any]) -> dict[str, Any]:
        meta: dict[str, Any] = doc["spec"]["template"]["metadata"]["annotations"]
        return meta

    assert checksum() == checksum()
    assert checksum() != checksum("gateway.extraEnv.PING_INTERVAL_S=10")


def test_monitor_env_is_generic_and_replica_id_is_the_pod_name() -> None:
    docs = render(sets=("monitor.extraEnv.SOURCE=replay", "monitor.extraEnv.LEASE_TTL_S=15"))
    config = one(docs, "ConfigMap", "monitor")["data"]
    assert config["SOURCE"] == "replay"
    assert config["LEASE_TTL_S"] == "15"
    env = env_of(pod_spec(one(docs, "Deployment", "monitor"))["containers"][0])
    assert env["REPLICA_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_monitoring_objects_need_the_operator_api() -> None:
    error = render_error((), values=(MONITORING,), monitoring_api=False)
    assert "Prometheus Operator CRDs" in error
    docs = render((MONITORING,))
    dashboard = [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    ]
    assert dashboard[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    for monitor in by_kind(docs, "ServiceMonitor"):
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_helm_test_hook_runs_the_smoke_check_against_the_gateway_service() -> None:
    docs = render()
    pod = by_kind(docs, "Pod")[0]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "/smoke/smoke.py"]
    gateway = pod_spec(one(docs, "Deployment", "gateway"))["containers"][0]
    assert container["image"] == gateway["image"]
    service = one(docs, "Service", "gateway")
    url = env_of(container)["GATEWAY_URL"]["value"]
    assert url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    script = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-smoke")]
    assert script[0]["data"]["smoke.py"] == (CHART / "files" / "smoke.py").read_text().rstrip("\n")
