"""Redis: AOF persistence by default, the in-chart Sentinel set, the external path."""

from __future__ import annotations

import re
import subprocess

import pytest

from common.redis_url import parse_redis_url
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

HA = CHART / "ci" / "ha-values.yaml"
SENTINEL = ("redis.sentinel.enabled=true",)


def test_persistence_with_aof_is_on_by_default() -> None:
    redis = one(render(), "StatefulSet", "redis")
    args = pod_spec(redis)["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    claim = redis["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "data" not in [v["name"] for v in pod_spec(redis)["volumes"]]


def test_persistence_can_be_turned_off_for_throwaway_clusters() -> None:
    redis = one(render(sets=("redis.persistence.enabled=false",)), "StatefulSet", "redis")
    args = pod_spec(redis)["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "no"
    assert "volumeClaimTemplates" not in redis["spec"]


def test_sentinel_is_off_by_default() -> None:
    docs = render()
    redis = one(docs, "StatefulSet", "redis")
    assert redis["spec"]["replicas"] == 1
    assert [c["name"] for c in pod_spec(redis)["containers"]] == ["redis"]
    assert len([s for s in by_kind(docs, "Service") if "redis" in s["metadata"]["name"]]) == 1


@pytest.mark.parametrize("values", [(), (HA,)], ids=["sentinel", "ha"])
def test_sentinel_set_is_three_pods_each_with_a_sentinel(values: tuple[object, ...]) -> None:
    docs = render(values, sets=SENTINEL)  # type: ignore[arg-type]
    validate_strict(docs)
    redis = one(docs, "StatefulSet", "redis")
    assert redis["spec"]["replicas"] == 3
    assert redis["spec"]["podManagementPolicy"] == "Parallel"
    spec = pod_spec(redis)
    containers = {c["name"]: c for c in spec["containers"]}
    assert set(containers) == {"redis", "sentinel"}
    assert containers["redis"]["command"] == ["sh", "/scripts/start-redis.sh"]
    assert containers["sentinel"]["command"] == ["sh", "/scripts/start-sentinel.sh"]
    assert {p["containerPort"] for p in containers["sentinel"]["ports"]} == {26379}
    for container in containers.values():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["resources"]["limits"]
    env = env_of(containers["sentinel"])
    assert env["QUORUM"]["value"] == "2"
    # Scripts from the chart's files/, unchanged, and the pods roll when they change.
    scripts = one(docs, "ConfigMap", "redis")
    assert (
        scripts["data"]["start-sentinel.sh"]
        == (CHART / "files/redis/start-sentinel.sh").read_text()
    )
    annotations = redis["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])
    headless = one(docs, "Service", "redis")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert redis["spec"]["serviceName"] == headless["metadata"]["name"]
    assert one(docs, "PodDisruptionBudget", "redis")["spec"]["maxUnavailable"] == 1


def test_services_connect_through_the_sentinels() -> None:
    docs = render(sets=SENTINEL)
    redis = one(docs, "StatefulSet", "redis")
    headless = one(docs, "Service", "redis")["metadata"]["name"]
    pods = [f"{redis['metadata']['name']}-{i}.{headless}.signals.svc" for i in range(3)]
    for component in ("gateway", "monitor"):
        env = env_of(pod_spec(one(docs, "Deployment", component))["containers"][0])
        url = env["REDIS_URL"]["value"]
        target = parse_redis_url(url)  # the services' own parser accepts it
        assert target.scheme == "redis+sentinel"
        assert target.sentinels == tuple((pod, 26379) for pod in pods)
        assert target.master == "qs-master" and target.db == 0
        assert target.password is None


def test_sentinel_password_stays_out_of_the_url() -> None:
    docs = render(sets=(*SENTINEL, "redis.auth.existingSecret=qs-redis-auth"))
    env = env_of(pod_spec(one(docs, "Deployment", "gateway"))["containers"][0])
    assert "$(REDIS_PASSWORD)" not in env["REDIS_URL"]["value"]
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "qs-redis-auth"
    for container in pod_spec(one(docs, "StatefulSet", "redis"))["containers"]:
        assert "REDIS_PASSWORD" in env_of(container)


def test_network_policy_lets_the_set_talk_to_itself() -> None:
    policy = one(render(sets=SENTINEL), "NetworkPolicy", "redis")
    (rule,) = policy["spec"]["ingress"]
    assert {p["port"] for p in rule["ports"]} == {"redis", "sentinel"}
    sources = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]}
    assert sources == {"gateway", "monitor", "redis"}


def test_sentinel_without_in_chart_redis_fails_with_a_fix() -> None:
    error = render_error((*SENTINEL, "redis.enabled=false", "redis.url=redis://x:6379/0"))
    assert "redis.sentinel: the in-chart Sentinel needs redis.enabled=true" in error
    assert "redis+sentinel://" in error


def test_external_sentinel_url_passes_through() -> None:
    url = "redis+sentinel://s1.example:26379,s2.example:26379/0/prod"
    escaped = url.replace(",", "\\,")  # --set splits on unescaped commas
    docs = render(sets=("redis.enabled=false", f"redis.url={escaped}"))
    env = env_of(pod_spec(one(docs, "Deployment", "monitor"))["containers"][0])
    assert env["REDIS_URL"]["value"] == url
    assert not by_kind(docs, "StatefulSet")


@pytest.mark.parametrize("script", ["common.sh", "start-redis.sh", "start-sentinel.sh"])
def test_sentinel_scripts_are_valid_posix_sh(script: str) -> None:
    result = subprocess.run(
        ["sh", "-n", str(CHART / "files" / "redis" / script)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        (("redis.sentinel.quorum=5",), "redis/sentinel/quorum"),
        (("redis.sentinel.enable=true",), "additional properties 'enable'"),
        (("redis.persistence.appendfsync=sometimes",), "redis/persistence/appendfsync"),
        (("redis.sentinel.masterSet=a b",), "redis/sentinel/masterSet"),
    ],
)
def test_schema_rejects_bad_redis_values(sets: tuple[str, ...], where: str) -> None:
    assert where in render_error(sets)
