"""The Grafana dashboards (the main one and the notifier's) checked against Grafana's own
schema: the npm package @grafana/schema types a dashboard as `Dashboard`, and `tsc --strict`
over the JSON typed that way rejects misspelled keys, wrong types and missing required
fields (no Grafana server needed; tests/js/package.json pins both packages, scripts/test
runs npm ci). Value mappings and threshold modes are TypeScript enums there, which a JSON
literal cannot satisfy, so the dashboards describe such states in the panel description."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.prom import DASHBOARDS, NOTIFIER_DASHBOARD, TSC, dashboard, require_binary


def tsc_errors(board: dict[str, Any], folder: Path) -> list[str]:
    """tsc's error lines for the dashboard typed as Grafana's `Dashboard`."""
    source = folder / "dashboard.ts"
    source.write_text(
        "import { Dashboard } from '@grafana/schema';\n"
        f"export const dashboard: Dashboard = {json.dumps(board, indent=2)};\n"
    )
    # Module resolution looks for node_modules beside the file.
    (folder / "node_modules").symlink_to(TSC.parents[1], target_is_directory=True)
    result = subprocess.run(
        [require_binary("tsc", TSC), "--noEmit", "--strict", "--skipLibCheck", str(source)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if "error TS" in line]
    assert (result.returncode == 0) == (not errors), result.stdout + result.stderr
    return errors


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_matches_grafana_schema(tmp_path: Path, path: Path) -> None:
    started = time.monotonic()
    assert tsc_errors(dashboard(path), tmp_path) == []
    assert time.monotonic() - started < 10


def test_schema_check_catches_a_misspelled_key_and_an_empty_current(tmp_path: Path) -> None:
    board = dashboard()
    board["panels"][0]["gridPoz"] = board["panels"][0].pop("gridPos")
    board["templating"]["list"][0]["current"] = {}
    errors = tsc_errors(board, tmp_path)
    assert any("gridPoz" in line for line in errors), errors
    assert any("VariableOption" in line for line in errors), errors


def test_notifier_dashboard_covers_the_contract_metrics() -> None:
    """Deliveries by destination/outcome, lag (entries and seconds), retries, dead letters and
    circuit state each have a panel, filtered by the namespace and destination variables."""
    board = dashboard(NOTIFIER_DASHBOARD)
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    for metric in (
        "qs_notifier_deliveries_total",
        "qs_notifier_lag_entries",
        "qs_notifier_lag_seconds",
        "qs_notifier_retries_total",
        "qs_notifier_dead_letters_total",
        "qs_notifier_dead_letter_entries",
        "qs_notifier_circuit_state",
        "qs_notifier_delivery_seconds_bucket",
    ):
        uses = [e for e in exprs if metric in e]
        assert uses, f"no panel shows {metric}"
        assert all('namespace="$namespace"' in e for e in uses), uses
    deliveries = next(e for e in exprs if "qs_notifier_deliveries_total" in e)
    assert "by (destination, outcome)" in deliveries
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "namespace", "destination"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert board["uid"] != dashboard()["uid"], "two dashboards, two uids"
