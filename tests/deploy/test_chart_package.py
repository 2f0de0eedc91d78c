"""`helm package` produces a chart an SRE can publish: metadata, license, schema, README."""

from __future__ import annotations

import tarfile
import tomllib
from pathlib import Path

import yaml

from tests.deploy.tools import CHART, ROOT, helm


def test_chart_metadata_names_home_sources_icon_and_maintainers() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["home"].startswith("https://")
    assert chart["sources"] and all(s.startswith("https://") for s in chart["sources"])
    assert chart["icon"].startswith("https://") and chart["icon"].endswith("icon.svg")
    assert (CHART / "icon.svg").is_file(), "the icon URL points at this file on main"
    for maintainer in chart["maintainers"]:
        assert maintainer["name"] and maintainer["email"] and maintainer["url"]
    assert chart["annotations"]["artifacthub.io/license"] == "MIT"


def test_license_is_mit_as_pyproject_says_and_ships_in_the_chart() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert (CHART / "LICENSE").read_text() == text


def test_changelog_has_an_entry_for_the_chart_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    assert f"Chart {version}" in changelog
    assert "## [Unreleased]" in changelog


def test_helm_package_contains_the_chart_and_nothing_from_ci(tmp_path: Path) -> None:
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    archive = tmp_path / f"{chart['name']}-{chart['version']}.tgz"
    assert archive.is_file(), result.stdout
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames()}
    for required in (
        "Chart.yaml",
        "values.yaml",
        "values.schema.json",
        "README.md",
        "LICENSE",
        "templates/gateway/httproute.yaml",
        "files/redis/start-sentinel.sh",
        "files/smoke.py",
        "files/dashboards/quantum-signals-notifier.json",
        "templates/notifier/deployment.yaml",
    ):
        assert required in names, f"{required} missing from the package"
    assert not [n for n in names if n.startswith("ci/")], "scenario files are not shipped"
    # The packaged chart installs the same: it renders and lints from the archive.
    assert "0 chart(s) failed" in helm("lint", "--strict", str(archive)).stdout
