"""k8s/ is the chart rendered (never a second source of truth); skaffold.yaml is valid
against the official schema and points at things that exist."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.tools import (
    CHART,
    ROOT,
    SHARED_SCHEMAS,
    one,
    render,
    require_module,
    require_tool,
)


def test_k8s_manifests_match_a_fresh_render() -> None:
    require_tool("helm")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "render-k8s"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"k8s/ drifted (run bash scripts/render-k8s):\n{result.stderr}"


def test_k8s_kustomization_builds_valid_objects_in_one_namespace() -> None:
    kubectl = require_tool("kubectl")
    kv = require_module("kubernetes_validate")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "k8s")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert {d["kind"] for d in docs} >= {"Namespace", "Deployment", "StatefulSet", "Service"}
    for doc in docs:
        kv.validate(doc, kv.latest_version(), strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "quantum-signals"
    assert not [d for d in docs if d.get("metadata", {}).get("annotations", {}).get("helm.sh/hook")]


@pytest.fixture(scope="module")
def skaffold() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return config


def test_skaffold_yaml_matches_the_official_schema(skaffold: dict[str, Any]) -> None:
    schema_path = SHARED_SCHEMAS / "skaffold-v4beta14.json"
    if not schema_path.is_file():
        pytest.skip(f"official skaffold schemas not present at {SHARED_SCHEMAS}")
    jsonschema = require_module("jsonschema")
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(
        {"$ref": "#/definitions/SkaffoldConfig", "definitions": schema["definitions"]}
    )
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(skaffold)]
    assert not errors, errors
    typo = json.loads(json.dumps(skaffold))
    typo["deploy"]["helm"]["releases"][0]["chartPth"] = "x"
    assert list(validator.iter_errors(typo)), "the schema must reject unknown keys"


def test_skaffold_builds_every_image_from_existing_dockerfiles(skaffold: dict[str, Any]) -> None:
    assert skaffold["apiVersion"] == "skaffold/v4beta14"
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert set(artifacts) == {
        "quantum-signals-gateway",
        "quantum-signals-monitor",
        "quantum-signals-notifier",
    }
    for image, artifact in artifacts.items():
        dockerfile = ROOT / artifact.get("context", ".") / artifact["docker"]["dockerfile"]
        assert dockerfile.is_file(), f"{image}: {dockerfile} missing"
        assert f'python", "-m", "{image.rsplit("-", 1)[1]}"' in dockerfile.read_text()


def test_skaffold_wires_built_tags_into_chart_values(skaffold: dict[str, Any]) -> None:
    release = skaffold["deploy"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    images = {a["image"] for a in skaffold["build"]["artifacts"]}
    wired = set()
    for key, template in release["setValueTemplates"].items():
        node = values
        for part in key.split("."):
            assert part in node, f"setValueTemplates key {key} is not a chart value"
            node = node[part]
        match = re.fullmatch(r"\{\{\.IMAGE_(REPO|TAG)_([a-z0-9_]+)\}\}", template)
        assert match, template
        wired.add(match[2])
    assert wired == {i.replace("-", "_").replace("/", "_") for i in images}
    sets = tuple(
        f"{component}.image.{key}={value}"
        for component in ("gateway", "monitor", "notifier")
        for key, value in (("repository", f"quantum-signals-{component}"), ("tag", "abc123"))
    )
    # skaffold's values: every image it builds is one a Deployment of the release runs
    # (ci/dev-values.yaml turns the notifier on for that).
    docs = render(tuple(ROOT / f for f in release["valuesFiles"]), sets=sets)
    for component in ("gateway", "monitor", "notifier"):
        spec = one(docs, "Deployment", component)["spec"]["template"]["spec"]
        assert spec["containers"][0]["image"] == f"quantum-signals-{component}:abc123"


def test_skaffold_port_forwards_the_gateway_service(skaffold: dict[str, Any]) -> None:
    release = skaffold["deploy"]["helm"]["releases"][0]
    docs = render(tuple(ROOT / f for f in release["valuesFiles"]))
    service = one(docs, "Service", "gateway")
    forward = skaffold["portForward"][0]
    # skaffold names the release like this test's "qs" release; compare the suffix.
    expected = service["metadata"]["name"].replace("qs-quantum-signals", release["name"])
    assert (forward["resourceType"], forward["resourceName"]) == ("service", expected)
    assert forward["namespace"] == release["namespace"]
    assert forward["port"] == service["spec"]["ports"][0]["port"]
    profiles = {p["name"]: p for p in skaffold["profiles"]}
    assert set(profiles) == {"kind", "minikube"}


def test_k8s_manifests_carry_no_notifier() -> None:
    """k8s/ is the chart's defaults, and the notifier is off by default: users without Helm
    get the same objects as before it existed."""
    text = (ROOT / "k8s" / "quantum-signals.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert docs
    components = {d["metadata"]["labels"].get("app.kubernetes.io/component") for d in docs}
    assert "notifier" not in components
