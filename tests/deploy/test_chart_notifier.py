"""The notifier component: off by default (renders nothing), and when on a Deployment that
runs the image's `python -m notifier` with the destinations file from values at
NOTIFIER_CONFIG, secrets only by reference, probes and metrics on port 9090, a PDB, a
metrics Service and a ServiceMonitor behind their flags."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.deploy.tools import (
    CHART,
    CI_VALUES,
    by_kind,
    env_of,
    one,
    pod_spec,
    render,
    render_error,
    settings_of,
    validate_strict,
)

NOTIFIER = CHART / "ci" / "notifier-values.yaml"
MONITORING = CHART / "ci" / "monitoring-values.yaml"
ON = ("notifier.enabled=true",)
COMPONENT = "app.kubernetes.io/component"


def notifier_docs(docs: list[dict[str, Any]]) -> list[str]:
    return [
        f"{d['kind']}/{d['metadata']['name']}"
        for d in docs
        if d["metadata"].get("labels", {}).get(COMPONENT) == "notifier"
        or "notifier" in d["metadata"]["name"]
    ]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = pod_spec(one(docs, "Deployment", "notifier"))["containers"][0]
    return found


def destinations_file(docs: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(the file's mounted path, its parsed content) as the pod sees it."""
    spec = pod_spec(one(docs, "Deployment", "notifier"))
    path = PurePosixPath(settings_of(docs, "notifier")["NOTIFIER_CONFIG"])
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    (config_map,) = [
        d
        for d in by_kind(docs, "ConfigMap")
        if d["metadata"]["name"] == volume["configMap"]["name"]
    ]
    return str(path), yaml.safe_load(config_map["data"][path.name])


@pytest.mark.parametrize(
    "values",
    [(), (MONITORING,), (CHART / "ci" / "ha-values.yaml",)],
    ids=["default", "monitoring", "ha"],
)
def test_disabled_by_default_renders_nothing(values: tuple[Any, ...]) -> None:
    docs = render(values)
    assert notifier_docs(docs) == []
    for rule in by_kind(docs, "PrometheusRule"):
        assert [g["name"] for g in rule["spec"]["groups"]] == ["quantum-signals"]
        assert "notifier" not in yaml.safe_dump(rule)
    for config_map in by_kind(docs, "ConfigMap"):
        assert "quantum-signals-notifier.json" not in config_map["data"]
    assert yaml.safe_load((CHART / "values.yaml").read_text())["notifier"]["enabled"] is False


def test_only_the_notifier_scenarios_turn_it_on() -> None:
    on = {v.name for v in CI_VALUES if notifier_docs(render((v,)))}
    assert on == {"notifier-values.yaml", "dev-values.yaml"}


def test_enabled_with_no_destinations_renders_an_empty_list() -> None:
    docs = render(sets=ON)
    validate_strict(docs)
    path, content = destinations_file(docs)
    assert path == "/etc/quantum-signals/notifier.yaml"
    assert content == {"destinations": []}
    assert container(docs)["image"] == "ghcr.io/quantum-signals/notifier:0.1.0"
    assert "command" not in container(docs) and "args" not in container(docs), "the image's CMD"


def test_destinations_from_values_become_the_file() -> None:
    docs = render((NOTIFIER,))
    validate_strict(docs)
    _, content = destinations_file(docs)
    values = yaml.safe_load(NOTIFIER.read_text())["notifier"]["destinations"]
    assert content == {"destinations": values}
    assert [d["type"] for d in content["destinations"]] == [
        "webhook",
        "slack",
        "discord",
        "telegram",
        "email",
    ]


def test_destination_changes_roll_the_pods() -> None:
    def checksum(*sets: str) -> str:
        meta = one(render(sets=(*ON, *sets)), "Deployment", "notifier")["spec"]["template"]
        return str(meta["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum(
        "notifier.destinations[0].name=ops", "notifier.destinations[0].type=webhook"
    )
    assert checksum() != checksum("notifier.extraEnv.NOTIFIER_CLAIM_IDLE_MS=5000")


def test_secrets_only_by_reference() -> None:
    docs = render((NOTIFIER,))
    assert not by_kind(docs, "Secret"), "the chart must never create secrets"
    env_from = container(docs)["envFrom"]
    assert {"secretRef": {"name": "qs-notifier"}} in env_from
    config_map = settings_of(docs, "notifier")
    _, content = destinations_file(docs)
    text = yaml.safe_dump(content)
    for name in ("QS_WEBHOOK_SECRET", "QS_TELEGRAM_TOKEN", "QS_SMTP_PASSWORD"):
        assert name in text, "named in the file"
        assert name not in config_map and name not in env_of(container(docs))
    # A {file: ...} secret lies under a read-only mount of a Secret.
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    assert mounts["/etc/qs/notifier"]["readOnly"] is True
    plain = container(render(sets=ON))["envFrom"]
    assert [list(e) for e in plain] == [["configMapRef"]], "no secretRef without existingSecret"


def test_consumer_is_the_pod_name_and_redis_comes_from_the_chart() -> None:
    docs = render(sets=ON)
    env = env_of(container(docs))
    assert env["NOTIFIER_CONSUMER"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["REDIS_URL"]["value"] == "redis://qs-quantum-signals-redis:6379/0"
    config = settings_of(docs, "notifier")
    assert config["SIGNAL_CHANNEL"] == settings_of(docs, "monitor")["SIGNAL_CHANNEL"]
    assert config["LOG_FORMAT"] == "json"
    external = render(sets=(*ON, "redis.enabled=false", "redis.existingSecret=qs-redis"))
    ref = env_of(container(external))["REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "qs-redis", "key": "redis-url"}


def test_metrics_port_and_probes() -> None:
    docs = render(sets=ON)
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert ports == {"metrics": 9090}
    assert settings_of(docs, "notifier")["METRICS_PORT"] == "9090"
    paths = {
        probe: (
            container(docs)[probe]["httpGet"]["path"],
            container(docs)[probe]["httpGet"]["port"],
        )
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": ("/livez", "metrics"),
        "livenessProbe": ("/livez", "metrics"),
        "readinessProbe": ("/readyz", "metrics"),
    }
    service = one(docs, "Service", "notifier")["spec"]
    assert service["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    zero = render(sets=(*ON, "notifier.metricsPort=0"))
    assert {p["containerPort"] for p in container(zero)["ports"]} == {8003}
    assert "notifier: metricsPort equals port" in render_error((*ON, "notifier.metricsPort=8003"))


def test_pdb_and_grace_period() -> None:
    docs = render((NOTIFIER,))
    pdb = one(docs, "PodDisruptionBudget", "notifier")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert (
        pdb["selector"]["matchLabels"]
        == one(docs, "Deployment", "notifier")["spec"]["selector"]["matchLabels"]
    )
    assert one(docs, "Deployment", "notifier")["spec"]["replicas"] == 2
    spec = pod_spec(one(docs, "Deployment", "notifier"))
    drain = float(settings_of(docs, "notifier")["SHUTDOWN_GRACE_S"])
    assert spec["terminationGracePeriodSeconds"] >= drain + 5
    off = render(sets=(*ON, "notifier.pdb.enabled=false"))
    assert "notifier" not in [
        d["metadata"]["labels"][COMPONENT] for d in by_kind(off, "PodDisruptionBudget")
    ]


def test_service_monitor_and_dashboard_follow_their_flags() -> None:
    docs = render((MONITORING, NOTIFIER))
    monitor = one(docs, "ServiceMonitor", "notifier")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboards = [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    ]
    assert set(dashboards[0]["data"]) == {"quantum-signals.json", "quantum-signals-notifier.json"}
    assert not by_kind(render((NOTIFIER,)), "ServiceMonitor"), "serviceMonitor off: none"


def test_duplicate_destination_names_fail_with_a_fix() -> None:
    sets = (
        *ON,
        "notifier.destinations[0].name=ops",
        "notifier.destinations[0].type=webhook",
        "notifier.destinations[1].name=ops",
        "notifier.destinations[1].type=slack",
    )
    error = render_error(sets)
    assert 'notifier.destinations[1].name: "ops" is used twice' in error


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        (("notifier.destinations[0].type=webhook",), "missing property 'name'"),
        (("notifier.destinations[0].name=ops",), "missing property 'type'"),
        (
            ("notifier.destinations[0].name=Ops Desk", "notifier.destinations[0].type=webhook"),
            "notifier/destinations/0/name",
        ),
        (
            ("notifier.destinations[0].name=ops", "notifier.destinations[0].type=pager"),
            "notifier/destinations/0/type",
        ),
        (("notifier.existingSecrets=x",), "additional properties 'existingSecrets' not allowed"),
        (("notifier.securityContext.readOnlyRootFilesystem=false",), "readOnlyRootFilesystem"),
        (("notifier.enabled=yes",), "notifier/enabled"),
        (
            ("networkPolicy.notifier.destinationEgress[0].to[0].ipBlock.cidr=1.2.3.4/32",),
            "destinationEgress",
        ),
    ],
)
def test_schema_rejects_typos_in_notifier_values(sets: tuple[str, ...], where: str) -> None:
    error = render_error(sets)
    assert where in error, error


def _with_secret_files(node: Any, folder: Path) -> Any:
    """The parsed file with every ``{file: PATH}`` secret pointed at a file under ``folder``
    (the Secret the pod would mount), so the notifier can resolve it here."""
    if isinstance(node, dict):
        if set(node) == {"file"}:
            local = folder / PurePosixPath(node["file"]).name
            local.write_text("https://discord.example/api/webhooks/1/x\n")
            return {"file": str(local)}
        return {k: _with_secret_files(v, folder) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_secret_files(v, folder) for v in node]
    return node


@pytest.mark.parametrize("values", [(), (NOTIFIER,)], ids=["empty", "every-type"])
def test_the_rendered_file_is_accepted_by_the_notifier(
    values: tuple[Any, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notifier's own start-up validation (notifier.config.parse_config, which also
    resolves every secret) accepts the file the chart mounts, with the Secret's keys set
    as environment variables as envFrom sets them."""
    config = pytest.importorskip("notifier.config")
    # What the operator's Secret would hold (shaped like the real thing: the notifier checks).
    secrets = {
        "QS_WEBHOOK_SECRET": "4f1c2b0e9d8a7f6e5d4c3b2a19081726",
        "QS_SLACK_URL": "https://hooks.slack.example/services/T000/B000/XXXX",
        "QS_TELEGRAM_TOKEN": "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
        "QS_SMTP_PASSWORD": "smtp-password",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    _, content = destinations_file(render(values, sets=ON))
    parsed = config.parse_config(_with_secret_files(content, tmp_path))
    assert parsed.names() == [d["name"] for d in content["destinations"]]
    monkeypatch.delenv("QS_TELEGRAM_TOKEN")
    if values:  # without the Secret's key the notifier refuses to start, naming the key
        with pytest.raises(config.ConfigError, match=r"destinations\[3\]\.bot_token"):
            config.parse_config(_with_secret_files(content, tmp_path))
