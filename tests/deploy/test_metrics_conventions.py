"""Metrics conventions every service registry follows: process and platform collectors, a
qs_build_info with version and commit, no `_created` series, and the cluster-wide gauges
(history, notifier lag and dead-letter stream) never summed across replicas by the
dashboards or the rules."""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.deploy.prom import DASHBOARDS, alert_rules, dashboard_queries

CLUSTER_WIDE = (
    "qs_history_length",
    "qs_history_oldest_age_seconds",
    # The notifier's gauges read the stream (XINFO GROUPS, XLEN), whichever replica exports them.
    "qs_notifier_lag_entries",
    "qs_notifier_lag_seconds",
    "qs_notifier_dead_letter_entries",
)


def gateway_registry() -> CollectorRegistry:
    from gateway.metrics import GatewayMetrics

    return GatewayMetrics(CollectorRegistry()).registry


def monitor_registry() -> CollectorRegistry:
    from monitor.metrics import MonitorMetrics

    return MonitorMetrics(CollectorRegistry(), strategies=("sma_cross",)).registry


def notifier_registry() -> CollectorRegistry:
    from notifier.metrics import NotifierMetrics

    metrics = NotifierMetrics(CollectorRegistry(), destinations=("ops-webhook",))
    metrics.deliveries.labels(destination="ops-webhook", outcome="delivered").inc()
    return metrics.registry


@pytest.mark.parametrize(
    ("service", "build"),
    [("gateway", gateway_registry), ("monitor", monitor_registry), ("notifier", notifier_registry)],
)
def test_registry_carries_process_platform_and_build_info_without_created(
    monkeypatch: pytest.MonkeyPatch, service: str, build: Callable[[], CollectorRegistry]
) -> None:
    monkeypatch.setenv("GIT_COMMIT", "0123abc")
    registry = build()
    text = generate_latest(registry).decode()
    samples = {s.name: s for family in registry.collect() for s in family.samples}
    assert "process_resident_memory_bytes" in samples
    assert "process_open_fds" in samples
    assert "python_info" in samples
    info = samples["qs_build_info"]
    assert info.value == 1
    assert info.labels == {
        "service": service,
        "version": importlib.metadata.version("quantum-signals"),
        "commit": "0123abc",
    }
    assert "_created" not in text, "the _created series must be off"
    assert "_total" in text  # the check above looked at real counters


def test_build_info_commit_defaults_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    samples = [s for f in gateway_registry().collect() for s in f.samples]
    info = next(s for s in samples if s.name == "qs_build_info")
    assert info.labels["commit"] == "unknown"


def _aggregations(expr: str, metric: str) -> list[str]:
    """The aggregation operators applied directly around `metric` in `expr`."""
    return re.findall(rf"\b(\w+)\s*(?:by\s*\([^)]*\)\s*)?\(\s*{metric}\b", expr)


def test_cluster_wide_gauges_are_never_summed_across_replicas() -> None:
    exprs = [expr for path in DASHBOARDS for _, expr in dashboard_queries("1m", path)]
    exprs += [rule["expr"] for rule in alert_rules(notifier=True)]
    uses = [(m, e) for e in exprs for m in CLUSTER_WIDE if m in e]
    assert {m for m, _ in uses} == set(CLUSTER_WIDE), "the dashboards show every such gauge"
    for metric, expr in uses:
        assert _aggregations(expr, metric) in (["max"], ["min"]), expr
