"""The Grafana dashboard checked against Grafana's own schema: the npm package
@grafana/schema types a dashboard as `Dashboard`, and `tsc --strict` over the JSON typed
that way rejects misspelled keys, wrong types and missing required fields (no Grafana
server needed; tests/js/package.json pins both packages, scripts/test runs npm ci)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.deploy.prom import TSC, dashboard, require_binary


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


def test_dashboard_matches_grafana_schema(tmp_path: Path) -> None:
    started = time.monotonic()
    assert tsc_errors(dashboard(), tmp_path) == []
    assert time.monotonic() - started < 10


def test_schema_check_catches_a_misspelled_key_and_an_empty_current(tmp_path: Path) -> None:
    board = dashboard()
    board["panels"][0]["gridPoz"] = board["panels"][0].pop("gridPos")
    board["templating"]["list"][0]["current"] = {}
    errors = tsc_errors(board, tmp_path)
    assert any("gridPoz" in line for line in errors), errors
    assert any("VariableOption" in line for line in errors), errors
