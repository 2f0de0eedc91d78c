"""Find the deploy tools (scripts/install-deploy-tools puts them in .tools/bin and the venv)
and render the chart. A missing tool skips the tests that need it, with the fix in the reason.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "quantum-signals"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"
INSTALL_HINT = "run: bash scripts/install-deploy-tools"
MONITORING_API = "monitoring.coreos.com/v1"
GATEWAY_API = "gateway.networking.k8s.io/v1/HTTPRoute"


def find_tool(name: str) -> str | None:
    for folder in (ROOT / ".tools" / "bin", Path(sys.executable).parent):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str) -> str:
    found = find_tool(name)
    if found is None:
        pytest.skip(f"{name} not installed ({INSTALL_HINT})")
    return found


def require_module(name: str) -> Any:
    return pytest.importorskip(name, reason=f"python package {name} missing ({INSTALL_HINT})")


@functools.cache
def _helm_env() -> dict[str, str]:
    base = Path(tempfile.mkdtemp(prefix="qs-helm-"))
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(base / "cache"),
        "HELM_CONFIG_HOME": str(base / "config"),
        "HELM_DATA_HOME": str(base / "data"),
    }


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [require_tool("helm"), *args],
        capture_output=True,
        text=True,
        env=_helm_env(),
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
    return result


@functools.cache
def _render_text(
    values: tuple[str, ...], sets: tuple[str, ...], kube_version: str, monitoring_api: bool
) -> str:
    args = ["template", "qs", str(CHART), "--namespace", "signals", "--kube-version", kube_version]
    for path in values:
        args += ["-f", path]
    for item in sets:
        args += ["--set", item]
    if monitoring_api:  # the CRD APIs: Prometheus Operator and Gateway API
        args += ["--api-versions", MONITORING_API, "--api-versions", GATEWAY_API]
    return helm(*args).stdout


def render(
    values: tuple[str | Path, ...] = (),
    sets: tuple[str, ...] = (),
    kube_version: str = "1.33.0",
    monitoring_api: bool = True,
) -> list[dict[str, Any]]:
    """Render the chart and return its documents (cached per arguments)."""
    text = _render_text(tuple(str(v) for v in values), sets, kube_version, monitoring_api)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_error(
    sets: tuple[str, ...], values: tuple[str | Path, ...] = (), monitoring_api: bool = True
) -> str:
    """The error message of a render that must fail."""
    args = ["template", "qs", str(CHART)]
    for path in values:
        args += ["-f", str(path)]
    for item in sets:
        args += ["--set", item]
    if monitoring_api:
        args += ["--api-versions", MONITORING_API, "--api-versions", GATEWAY_API]
    result = helm(*args, check=False)
    assert result.returncode != 0, f"expected helm template to fail with {sets}"
    return result.stderr


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    found = [
        d
        for d in by_kind(docs, kind)
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} for {component}, got {len(found)}"
    return found[0]


def settings_of(docs: list[dict[str, Any]], component: str) -> dict[str, str]:
    """The component's settings ConfigMap data (its env): the ConfigMap named like the
    component. The notifier has a second one, ``-destinations``, holding its file."""
    found = [
        d
        for d in by_kind(docs, "ConfigMap")
        if d["metadata"]["name"].endswith(f"-{component}")
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one settings ConfigMap for {component}, got {len(found)}"
    data: dict[str, str] = found[0]["data"]
    return data


def validate_strict(docs: list[dict[str, Any]], kube_version: str = "1.33.0") -> None:
    """Every document against the official Kubernetes schema (strict: unknown fields fail);
    CRD kinds have no official schema and are skipped."""
    kv = require_module("kubernetes_validate")
    for doc in docs:
        if doc["kind"] in ("ServiceMonitor", "PrometheusRule", "HTTPRoute"):
            continue
        try:
            kv.validate(doc, kube_version, strict=True)
        except kv.ValidationError as exc:
            raise AssertionError(f"{doc['kind']}/{doc['metadata']['name']}: {exc}") from None


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}
