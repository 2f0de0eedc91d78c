"""Dockerfiles (hadolint, trivy, checkov, what goes in the image), yamllint, the chart README."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.deploy.tools import CHART, ROOT, find_tool, require_tool

DOCKERFILES = [ROOT / "Dockerfile.gateway", ROOT / "Dockerfile.monitor"]
TRIVY_CACHE = ROOT / ".tools" / "trivy-cache"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )


def test_hadolint_error_threshold() -> None:
    hadolint = require_tool("hadolint")
    result = run(hadolint, "--failure-threshold", "error", *map(str, DOCKERFILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_trivy_config_has_no_high_or_critical_findings(tmp_path: Path) -> None:
    trivy = require_tool("trivy")
    for dockerfile in DOCKERFILES:  # trivy finds Dockerfiles by name: copy them aside
        (tmp_path / dockerfile.name.replace("Dockerfile.", "") / "Dockerfile").parent.mkdir()
        (tmp_path / dockerfile.name.replace("Dockerfile.", "") / "Dockerfile").write_text(
            dockerfile.read_text()
        )
    targets = [str(tmp_path), str(CHART), str(ROOT / "k8s")]
    for target in targets:
        result = run(
            trivy,
            "config",
            "--skip-check-update",
            "-q",
            "--cache-dir",
            str(TRIVY_CACHE),
            "--severity",
            "HIGH,CRITICAL",
            "--exit-code",
            "1",
            target,
        )
        assert result.returncode == 0, f"trivy config {target}:\n{result.stdout}{result.stderr}"


def test_checkov_dockerfiles_and_manifests() -> None:
    checkov = find_tool("checkov")
    if checkov is None:
        pytest.skip(
            "checkov not installed (optional: QS_WITH_CHECKOV=1 bash scripts/install-deploy-tools)"
        )
    result = run(
        checkov,
        "--skip-download",
        "--quiet",
        "--compact",
        "--framework",
        "dockerfile",
        *[a for d in DOCKERFILES for a in ("-f", str(d))],
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_dockerfiles_follow_the_image_rules() -> None:
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        service = dockerfile.suffix.lstrip(".")
        froms = re.findall(r"^FROM (\S+)", text, re.M)
        assert len(froms) >= 2, "multi-stage"
        for base in froms:
            assert base in ("deps", "build") or re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), (
                f"unpinned base {base}"
            )
        assert "requirements.lock" in text.split("COPY services")[0], "deps before code"
        copies = re.findall(r"^COPY (services/\S+)", text, re.M)
        assert sorted(copies) == sorted(["services/common", f"services/{service}"])
        assert re.search(r"^USER \d+:\d+$", text, re.M), "numeric non-root user"
        assert f'CMD ["python", "-m", "{service}"]' in text, "exec-form single process"
        for label in ("title", "version", "revision", "source", "licenses"):
            assert f"org.opencontainers.image.{label}=" in text


def third_party_imports(*folders: Path) -> set[str]:
    local = {"common", "gateway", "monitor", "__future__"}
    names: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names - local if n not in sys.stdlib_module_names}


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def test_gateway_image_installs_every_package_the_gateway_imports() -> None:
    text = (ROOT / "Dockerfile.gateway").read_text()
    install = text[text.index("--constraint") : text.index("# --- application code")]
    listed = {
        normalize(re.sub(r"\[.*\]", "", w.strip('"')))
        for w in install.split()
        if re.match(r'^"?[a-z]', w)
    }
    dists = packages_distributions()
    imports = third_party_imports(ROOT / "services" / "gateway", ROOT / "services" / "common")
    for module in sorted(imports):
        owners = {normalize(d) for d in dists.get(module, [module])}
        assert owners & listed, f"gateway imports {module} but Dockerfile.gateway lacks {owners}"


def test_dockerignore_keeps_the_context_to_the_lock_and_services() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {
        "!requirements.lock",
        "!services/common/",
        "!services/gateway/",
        "!services/monitor/",
    } <= set(lines)


def test_yamllint() -> None:
    yamllint = require_tool("yamllint")
    targets = [
        "skaffold.yaml",
        "k8s",
        "charts/quantum-signals/values.yaml",
        "charts/quantum-signals/Chart.yaml",
        "charts/quantum-signals/ci",
        ".yamllint.yaml",
    ]
    result = run(yamllint, "--strict", "-c", ".yamllint.yaml", *targets)
    assert result.returncode == 0, result.stdout


def test_chart_readme_parameter_table_matches_values() -> None:
    result = run(sys.executable, "scripts/gen_chart_readme.py", "--check")
    assert result.returncode == 0, result.stderr
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_chart_readme
    finally:
        sys.path.pop(0)
    import yaml

    documented = {
        path for path, _ in gen_chart_readme.documented_keys((CHART / "values.yaml").read_text())
    }

    def leaves(node: object, path: str) -> list[str]:
        if isinstance(node, dict) and node and path not in documented:
            return [leaf for k, v in node.items() for leaf in leaves(v, f"{path}.{k}")]
        return [path]

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    undocumented = [
        leaf for k, v in values.items() for leaf in leaves(v, k) if leaf not in documented
    ]
    assert not undocumented, f"values without a '# --' comment: {undocumented}"
