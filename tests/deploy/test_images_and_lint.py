"""Dockerfiles (hadolint, trivy, checkov, what goes in the image), yamllint, the chart README."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy.tools import CHART, ROOT, find_tool, helm, require_tool

sys.path.insert(0, str(ROOT / "scripts"))
try:
    import image_packages  # one source of truth with scripts/verify-images
finally:
    sys.path.pop(0)

SERVICES = ("gateway", "monitor", "notifier")
DOCKERFILES = [ROOT / f"Dockerfile.{service}" for service in SERVICES]
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
    # The chart's defaults leave the notifier off: scan its scenario rendered as well.
    rendered = tmp_path / "rendered"
    rendered.mkdir()
    (rendered / "notifier.yaml").write_text(
        helm(
            "template",
            "qs",
            str(CHART),
            "-n",
            "signals",
            "-f",
            str(CHART / "ci" / "notifier-values.yaml"),
        ).stdout
    )
    targets = [str(tmp_path / d.suffix.lstrip(".")) for d in DOCKERFILES]
    targets += [str(rendered), str(CHART), str(ROOT / "k8s")]
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
        # One base for every stage, a build argument (CI passes its local base) whose
        # default is the pinned official image.
        assert set(froms) - {"deps", "build"} == {"${BASE_IMAGE}"}, froms
        default = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
        assert len(default) == 1 and text.index("ARG BASE_IMAGE=") < text.index("FROM "), default
        assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-\w+", default[0]), default
        assert "requirements.lock" in text.split("COPY services")[0], "deps before code"
        copies = re.findall(r"^COPY (services/\S+)", text, re.M)
        assert sorted(copies) == sorted(["services/common", f"services/{service}"])
        assert re.search(r"^USER \d+:\d+$", text, re.M), "numeric non-root user"
        assert f'CMD ["python", "-m", "{service}"]' in text, "exec-form single process"
        for label in ("title", "version", "revision", "source", "licenses"):
            assert f"org.opencontainers.image.{label}=" in text


@pytest.mark.parametrize("service", SERVICES)
def test_image_installs_exactly_the_packages_its_service_imports(service: str) -> None:
    """Every third-party import of the service (and common) is installed, and nothing else:
    no gateway packages in the monitor image and the other way round."""
    listed = {
        image_packages.normalize(Requirement(r).name)
        for r in image_packages.install_list(ROOT / f"Dockerfile.{service}")
    }
    owners = image_packages.import_owners(image_packages.third_party_imports(service))
    for module, dists in sorted(owners.items()):
        assert dists & listed, f"{service} imports {module} but Dockerfile.{service} lacks {dists}"
    imported = set().union(*owners.values())
    assert listed <= imported, f"Dockerfile.{service} installs unused {sorted(listed - imported)}"


def test_the_monitor_image_carries_none_of_the_gateway_only_packages() -> None:
    monitor = image_packages.expected(ROOT / "Dockerfile.monitor")
    for gateway_only in ("python-socketio", "python-engineio", "pyjwt", "websockets", "httptools"):
        assert gateway_only not in monitor
    assert "ccxt" in monitor and "ccxt" not in image_packages.expected(ROOT / "Dockerfile.gateway")


def test_the_notifier_image_carries_neither_the_gateway_nor_the_monitor_packages() -> None:
    notifier = image_packages.expected(ROOT / "Dockerfile.notifier")
    for other in ("python-socketio", "pyjwt", "websockets", "uvloop", "ccxt", "httptools"):
        assert other not in notifier, other
    assert {"httpx", "aiosmtplib", "pyyaml"} <= notifier
    for service in ("gateway", "monitor"):
        assert "aiosmtplib" not in image_packages.expected(ROOT / f"Dockerfile.{service}")


def test_image_package_check_reports_missing_and_extra_packages() -> None:
    """The comparison scripts/verify-images runs on `pip list` inside each built image."""
    dockerfile = ROOT / "Dockerfile.gateway"
    want = image_packages.expected(dockerfile)
    listing = [{"name": n, "version": "0"} for n in sorted(want | {"pip"})]
    assert image_packages.check(dockerfile, json.dumps(listing), None) == []
    wrong = [p for p in listing if p["name"] != "uvloop"] + [{"name": "ccxt", "version": "0"}]
    assert image_packages.check(dockerfile, json.dumps(wrong), None) == [
        "missing from the image: uvloop",
        "in the image but not needed: ccxt",
    ]
    # Debian's Python 3.11.2 needs async-timeout for redis (python_full_version < "3.11.3").
    old = {"python_full_version": "3.11.2", "python_version": "3.11"}
    assert "async-timeout" in image_packages.expected(dockerfile, old)


def test_dockerignore_keeps_the_context_to_the_lock_and_services() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {
        "!requirements.lock",
        "!services/common/",
        "!services/gateway/",
        "!services/monitor/",
        "!services/notifier/",
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
