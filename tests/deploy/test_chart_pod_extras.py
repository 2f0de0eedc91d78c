"""The same pod extras, spelled the same way, for every component; files from Secrets."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.deploy.tools import (
    CHART,
    by_kind,
    env_of,
    one,
    pod_spec,
    render,
    render_error,
    settings_of,
    validate_strict,
)

SECRET_FILES = CHART / "ci" / "secret-files-values.yaml"
KINDS = {
    "gateway": "Deployment",
    "monitor": "Deployment",
    "notifier": "Deployment",
    "redis": "StatefulSet",
}
#: The notifier is off by default; these tests compare every component, so it is on.
NOTIFIER_ON = ("notifier.enabled=true",)
EXTRAS = (
    "initContainers",
    "extraVolumes",
    "extraVolumeMounts",
    "extraEnv",
    "secretEnv",
    "podAnnotations",
    "priorityClassName",
    "topologySpreadConstraints",
)


def workload(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    return one(docs, KINDS[component], component)


def env_values(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    """Plain env of the main container, ConfigMap entries included."""
    container = pod_spec(workload(docs, component))["containers"][0]
    values = {k: v.get("value") for k, v in env_of(container).items()}
    if component != "redis":
        values.update(settings_of(docs, component))
    return values


def extras_sets(component: str) -> tuple[str, ...]:
    c = component
    return (
        *NOTIFIER_ON,
        f"{c}.initContainers[0].name=prepare",
        f"{c}.initContainers[0].image=busybox:1.37",
        f"{c}.extraVolumes[0].name=keys",
        f"{c}.extraVolumes[0].secret.secretName=qs-keys",
        f"{c}.extraVolumeMounts[0].name=keys",
        f"{c}.extraVolumeMounts[0].mountPath=/etc/qs/keys",
        f"{c}.extraVolumeMounts[0].readOnly=true",
        f"{c}.extraEnv.EXTRA_SETTING=on",
        f"{c}.secretEnv.EXTRA_SECRET.secret=qs-extra",
        f"{c}.secretEnv.EXTRA_SECRET.key=value",
        f"{c}.podAnnotations.example\\.com/team=signals",
        f"{c}.priorityClassName=critical",
        f"{c}.topologySpreadConstraints[0].maxSkew=1",
        f"{c}.topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
        f"{c}.topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    )


def test_every_component_has_the_same_extra_keys_in_values() -> None:
    import yaml

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for component in KINDS:
        missing = [k for k in EXTRAS if k not in values[component]]
        assert not missing, f"{component} lacks {missing}"
        assert values[component]["extraEnv"] == {} and values[component]["secretEnv"] == {}


@pytest.mark.parametrize("component", list(KINDS))
def test_extras_are_off_by_default(component: str) -> None:
    spec = pod_spec(workload(render(sets=NOTIFIER_ON), component))
    assert "initContainers" not in spec
    assert "priorityClassName" not in spec
    assert "topologySpreadConstraints" not in spec
    # The chart's own volumes: /tmp, Redis data, the notifier's destinations file.
    assert [v["name"] for v in spec["volumes"]] in (["tmp"], ["tmp", "data"], ["config", "tmp"])
    assert [m["name"] for m in spec["containers"][0]["volumeMounts"]] in (
        ["tmp"],
        ["data", "tmp"],
        ["config", "tmp"],
    )


@pytest.mark.parametrize("component", list(KINDS))
def test_extras_render_on_every_component(component: str) -> None:
    docs = render(sets=extras_sets(component))
    validate_strict(docs)
    doc = workload(docs, component)
    spec = pod_spec(doc)
    assert [c["name"] for c in spec["initContainers"]] == ["prepare"]
    assert {"name": "keys", "secret": {"secretName": "qs-keys"}} in spec["volumes"]
    container = spec["containers"][0]
    assert {"name": "keys", "mountPath": "/etc/qs/keys", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert env_values(docs, component)["EXTRA_SETTING"] == "on"
    secret = env_of(container)["EXTRA_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "qs-extra", "key": "value"}
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["example.com/team"] == "signals"
    assert spec["priorityClassName"] == "critical"
    (spread,) = spec["topologySpreadConstraints"]
    # The chart fills in the component's own selector, so pods spread among themselves.
    assert spread["labelSelector"]["matchLabels"] == doc["spec"]["selector"]["matchLabels"]
    others = [c for c in KINDS if c != component]
    plain = render(sets=NOTIFIER_ON)
    for other in others:  # setting one component's extras leaves the others alone
        assert pod_spec(workload(docs, other)) == pod_spec(workload(plain, other))


def files_from_secrets(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    """Each *_FILE setting of ``component`` -> the Secret its path is mounted from."""
    spec = pod_spec(one(docs, "Deployment", component))
    secrets = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    mounts = spec["containers"][0]["volumeMounts"]
    found = {}
    for name, value in env_values(docs, component).items():
        if not name.endswith("_FILE"):
            continue
        path = PurePosixPath(str(value))
        owners = [m for m in mounts if path.is_relative_to(m["mountPath"])]
        assert len(owners) == 1, f"{component} {name}={value} is not under one mount"
        assert owners[0].get("readOnly") is True
        found[name] = secrets[owners[0]["name"]]
    return found


def test_jwks_and_redis_tls_files_are_mounted_from_secrets() -> None:
    docs = render((SECRET_FILES,))
    validate_strict(docs)
    assert files_from_secrets(docs, "gateway") == {
        "JWT_JWKS_FILE": "qs-jwks",
        "REDIS_TLS_CA_FILE": "qs-redis-tls",
        "REDIS_TLS_CERT_FILE": "qs-redis-tls",
        "REDIS_TLS_KEY_FILE": "qs-redis-tls",
    }
    assert set(files_from_secrets(docs, "monitor").values()) == {"qs-redis-tls"}
    for component in ("gateway", "monitor"):
        env = env_of(pod_spec(one(docs, "Deployment", component))["containers"][0])
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "qs-redis-auth"
    assert not by_kind(docs, "Secret"), "the chart must never create secrets"


def test_a_public_key_file_is_mounted_from_a_secret() -> None:
    docs = render(
        sets=(
            "gateway.extraEnv.JWT_PUBLIC_KEY_FILE=/etc/qs/jwt/public.pem",
            "gateway.extraVolumes[0].name=jwt",
            "gateway.extraVolumes[0].secret.secretName=qs-jwt-public-key",
            "gateway.extraVolumeMounts[0].name=jwt",
            "gateway.extraVolumeMounts[0].mountPath=/etc/qs/jwt",
            "gateway.extraVolumeMounts[0].readOnly=true",
        )
    )
    assert files_from_secrets(docs, "gateway") == {"JWT_PUBLIC_KEY_FILE": "qs-jwt-public-key"}


def test_extra_env_changes_roll_the_pods() -> None:
    def checksum(component: str, *sets: str) -> str:
        meta = one(render(sets=sets), "Deployment", component)["spec"]["template"]["metadata"]
        return str(meta["annotations"]["checksum/config"])

    assert checksum("monitor") != checksum("monitor", "monitor.extraEnv.SOURCE=replay")


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        (("monitor.env.SOURCE=replay",), "additional properties 'env' not allowed"),
        (("redis.extraVolumeMount[0].name=x",), "additional properties 'extraVolumeMount'"),
        (("gateway.initContainers[0].name=x",), "missing property 'image'"),
        (("monitor.extraVolumeMounts[0].name=x",), "missing property 'mountPath'"),
        (("redis.priorityClassName[0]=x",), "redis/priorityClassName"),
        (("gateway.secretEnv.X.secret=s",), "missing property 'key'"),
        (("redis.extraEnv.bad-name=x",), "invalid propertyName 'bad-name'"),
        (("monitor.topologySpreadConstraints[0].maxSkew=1",), "missing properties"),
        (("redis.podAnnotations.a=1",), "redis/podAnnotations/a"),
    ],
)
def test_schema_rejects_typos_and_wrong_types_in_extras(sets: tuple[str, ...], where: str) -> None:
    error = render_error(sets)
    assert where in error, error
