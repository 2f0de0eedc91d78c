"""helm lint --strict, and every scenario rendered and validated against the official
Kubernetes schemas (strict) for the oldest and newest Kubernetes versions the chart claims."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import CHART, CI_VALUES, helm, render, require_module

CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}
CRD_API_VERSIONS = {"monitoring.coreos.com/v1", "gateway.networking.k8s.io/v1"}


def claimed_versions() -> list[str]:
    """Oldest: the chart's kubeVersion floor. Newest: the newest schema set available."""
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+)\.\d+(-0)?", constraint)
    assert match, f"kubeVersion {constraint!r} should be a plain lower bound"
    try:
        import kubernetes_validate
    except ImportError:
        return [f"{match[1]}.0"]
    return [f"{match[1]}.0", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "no-values")
def test_helm_lint_strict(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)]
    if values is not None:
        args += ["-f", str(values)]
    if values is not None and values.name == "monitoring-values.yaml":
        # helm lint cannot pretend the Prometheus Operator CRDs exist: the chart must say so.
        result = helm(*args, check=False)
        assert "need the Prometheus Operator CRDs" in result.stdout + result.stderr
        args += [
            "--set",
            "metrics.serviceMonitor.enabled=false",
            "--set",
            "metrics.prometheusRule.enabled=false",
        ]
    if values is not None and values.name == "httproute-values.yaml":
        result = helm(*args, check=False)
        assert (
            "does not serve gateway.networking.k8s.io/v1 HTTPRoute" in result.stdout + result.stderr
        )
        # helm lint has no --api-versions: lint the rest (the route renders in the tests).
        args += [
            "--set",
            "gateway.httpRoute.enabled=false",
            "--set",
            "gateway.transports={websocket}",
        ]
    result = helm(*args)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", claimed_versions())
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda v: v.name)
def test_scenario_is_valid_kubernetes(values: Path, kube_version: str) -> None:
    kv = require_module("kubernetes_validate")
    docs = render((values,), kube_version=kube_version)
    assert docs
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            # No official schema for CRDs: kubernetes_validate raises instead of passing.
            with pytest.raises(kv.SchemaNotFoundError):
                kv.validate(doc, kube_version, strict=True)
            assert doc["apiVersion"] in CRD_API_VERSIONS, name
            continue
        try:
            kv.validate(doc, kube_version, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{values.name} {name} invalid for Kubernetes {kube_version}: {exc}")


def test_monitoring_scenario_renders_the_crds() -> None:
    docs = render((CHART / "ci" / "monitoring-values.yaml",))
    kinds = sorted(d["kind"] for d in docs if d["kind"] in CRD_KINDS)
    assert kinds == ["PrometheusRule", "ServiceMonitor", "ServiceMonitor"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("gateway.replicas=3",), "additional properties 'replicas' not allowed"),
        (("gateway.replicaCount=three",), "want integer"),
        (("gateway.transports={smoke-signals}",), "gateway/transports/0"),
        (("gateway.securityContext.readOnlyRootFilesystem=false",), "readOnlyRootFilesystem"),
        (("monitor.extraEnv.lower_case=x",), "invalid propertyName 'lower_case'"),
        (("redis.persistence.size=lots",), "redis/persistence/size"),
    ],
)
def test_schema_rejects_typos_and_wrong_types(sets: tuple[str, ...], message: str) -> None:
    result = helm(
        "template", "qs", str(CHART), *[a for s in sets for a in ("--set", s)], check=False
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_every_values_key_is_in_the_schema() -> None:
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: Any, sch: dict[str, Any], path: str) -> None:
        if not isinstance(node, dict) or "properties" not in sch:
            return
        for key, value in node.items():
            assert key in sch["properties"], f"{path}{key} missing from values.schema.json"
            walk(value, sch["properties"][key], f"{path}{key}.")

    walk(values, schema, "")
