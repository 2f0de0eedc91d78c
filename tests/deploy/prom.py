"""What the Prometheus and dashboard tests share: the rendered rules and dashboard, the
binaries (promtool, prometheus, tsc) and the names the chart gives the scrape jobs.

The rules always come out of a fresh `helm template` of the chart, never a copy, so a test
checks what a cluster would load. A missing binary skips locally but fails in CI (CI=true),
where .ci/run installs it: a skipped check there would be a check that never runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import CHART, ROOT, by_kind, render

MONITORING_VALUES = CHART / "ci" / "monitoring-values.yaml"
NOTIFIER_VALUES = CHART / "ci" / "notifier-values.yaml"
DASHBOARD = CHART / "files" / "dashboards" / "quantum-signals.json"
#: Shipped beside the first only with notifier.enabled.
NOTIFIER_DASHBOARD = CHART / "files" / "dashboards" / "quantum-signals-notifier.json"
DASHBOARDS = (DASHBOARD, NOTIFIER_DASHBOARD)
RULE_TESTS = Path(__file__).resolve().parent / "rules"
TSC = ROOT / "tests" / "js" / "node_modules" / ".bin" / "tsc"
#: What tools.render() uses: release "qs" in namespace "signals".
NAMESPACE = "signals"
JOBS = {
    "gateway": "qs-quantum-signals-gateway",
    "monitor": "qs-quantum-signals-monitor",
    "notifier": "qs-quantum-signals-notifier",
}
_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*[-+0-9.e]+\s*$")
_ABSENT = re.compile(r"^absent\((?P<inner>.*)\)$", re.DOTALL)


def require_binary(name: str, path: str | Path | None = None) -> str:
    """The binary's path; skip without it locally, fail in CI (where it must be installed)."""
    found = str(path) if path is not None and Path(path).is_file() else shutil.which(name)
    if found is not None:
        return found
    reason = f"{name} not installed (apt-get install -y prometheus; npm ci in tests/js)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: .ci/run must install it", pytrace=False)
    pytest.skip(reason)


def rule_groups(notifier: bool = False) -> list[dict[str, Any]]:
    """`spec.groups` of the PrometheusRule the chart renders with monitoring enabled (and,
    with ``notifier``, the notifier too: its group of alerts)."""
    values = (MONITORING_VALUES, NOTIFIER_VALUES) if notifier else (MONITORING_VALUES,)
    rules = by_kind(render(values), "PrometheusRule")
    assert len(rules) == 1, "the monitoring values must render one PrometheusRule"
    groups: list[dict[str, Any]] = rules[0]["spec"]["groups"]
    return groups


def alert_rules(notifier: bool = False) -> list[dict[str, Any]]:
    return [rule for group in rule_groups(notifier) for rule in group["rules"] if "alert" in rule]


def write_rules(folder: Path, notifier: bool = False) -> Path:
    """The rendered groups as a plain Prometheus rules file (what promtool and Prometheus load)."""
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule_groups(notifier)}, sort_keys=False))
    return path


def dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def dashboard_queries(rate_interval: str, path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, expr) for every panel target, with the template variables filled in
    the way Grafana would for this namespace (and "All" destinations)."""
    found = []
    for panel in dashboard(path)["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$namespace", NAMESPACE)
            expr = expr.replace("$__rate_interval", rate_interval)
            expr = expr.replace("$destination", ".+")
            found.append((panel["title"], expr))
    return found


def measured_part(expr: str) -> str:
    """An alert expression without its threshold (or its absent()): the series it measures.

    A healthy system makes `X > 0.5` or `absent(up == 1)` return nothing, so "the
    expression returns series" can only be asked of X or of `up == 1`.
    """
    body = " ".join(expr.split())
    absent = _ABSENT.match(body)
    if absent:
        return absent.group("inner")
    return _COMPARISON.sub("", body)
