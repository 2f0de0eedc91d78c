"""promtool over the chart's rendered alert rules: `check rules` (syntax, templates) and
`test rules` with the unit tests in tests/deploy/rules/ (input series -> expected alerts,
with their labels and annotations), and every alert has both a firing and a quiet case.

The rules are rendered with the notifier on (its group only exists then), so the gateway
and monitor alerts are tested in the same render as the notifier's."""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.prom import RULE_TESTS, alert_rules, require_binary, write_rules

TEST_FILES = sorted(RULE_TESTS.glob("*.yaml"))


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rendered_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = write_rules(tmp_path, notifier=True)
    result = promtool("check", "rules", str(rules), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules(notifier=True))} rules found" in result.stdout


@pytest.mark.parametrize("test_file", TEST_FILES, ids=[f.stem for f in TEST_FILES])
def test_promtool_unit_tests_pass_on_the_rendered_rules(tmp_path: Path, test_file: Path) -> None:
    write_rules(tmp_path, notifier=True)
    shutil.copy(test_file, tmp_path / test_file.name)
    result = promtool("test", "rules", test_file.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _cases() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """alertname -> {"firing": [expected alerts...], "quiet": [...]} over every test file."""
    cases: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"firing": [], "quiet": []}
    )
    for test_file in TEST_FILES:
        spec = yaml.safe_load(test_file.read_text())
        assert spec["rule_files"] == ["rules.yaml"], f"{test_file.name} must test the render"
        for group in spec["tests"]:
            for check in group.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                kind = "firing" if expected else "quiet"
                cases[check["alertname"]][kind].extend(expected or [{}])
    return cases


def test_every_alert_is_tested_firing_and_quiet_with_labels_and_annotations() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules(notifier=True)}
    cases = _cases()
    assert set(cases) == set(rules), "unit tests and rendered alerts differ"
    for name, rule in rules.items():
        assert cases[name]["firing"], f"{name}: no test where it fires"
        assert cases[name]["quiet"], f"{name}: no test where it stays quiet"
        for alert in cases[name]["firing"]:
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
            assert set(alert["exp_annotations"]) == set(rule["annotations"]), name


def test_notifier_alerts_exist_only_with_the_notifier() -> None:
    without = {rule["alert"] for rule in alert_rules()}
    with_notifier = {rule["alert"] for rule in alert_rules(notifier=True)}
    assert not [name for name in without if "Notifier" in name]
    assert with_notifier - without == {
        "QuantumSignalsNotifierDeadLetters",
        "QuantumSignalsNotifierLagging",
        "QuantumSignalsNotifierDown",
    }
    redis = next(r for r in alert_rules(notifier=True) if r["alert"].endswith("RedisUnreachable"))
    assert "qs-quantum-signals-notifier" in redis["expr"], "the notifier's Redis loops too"
