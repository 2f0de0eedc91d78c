"""The notifier's dashboard and alerts against the real thing: a real Redis, a real
`python -m notifier` with two webhook destinations on a loopback receiver (one accepts,
one refuses with a permanent 400), and a real Prometheus (1 s scrapes and evaluation)
loaded with the chart's rendered rules, scraping it with the labels the chart's
ServiceMonitor gives it.

Every panel of the notifier dashboard, its template variables and every notifier alert
expression must parse and return series; the refused signal must make
QuantumSignalsNotifierDeadLetters active for that destination only; a killed notifier
makes QuantumSignalsNotifierDown active. Active = pending or firing (promtool tests the
`for:` durations, test_alert_rules.py).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import redis

from common.constants import history_key
from tests.deploy.prom import (
    JOBS,
    NAMESPACE,
    NOTIFIER_DASHBOARD,
    alert_rules,
    dashboard,
    dashboard_queries,
    measured_part,
    require_binary,
    write_rules,
)
from tests.deploy.test_prometheus_live import (
    RATE_INTERVAL,
    Prometheus,
    alert_active,
    scrape_config,
    wait_until,
)
from tests.support.receivers import HttpReceiver, Recorded, Reply
from tests.support.redis_server import own_redis
from tests.support.services import ServiceProcess

BUDGET_S = 90.0
CHANNEL = "quantum_signals"


def notifier_queries() -> list[tuple[str, str]]:
    """(where, expr) for the notifier dashboard's panels and variables and its alerts."""
    checks = [
        (f"panel {title!r}", expr)
        for title, expr in dashboard_queries(RATE_INTERVAL, NOTIFIER_DASHBOARD)
    ]
    for variable in dashboard(NOTIFIER_DASHBOARD)["templating"]["list"]:
        query = variable["query"]
        text = query.get("query", "") if isinstance(query, dict) else ""
        found = re.fullmatch(r"label_values\((\w+)(\{[^}]*\})?, *(\w+)\)", text)
        if found:
            selector = (found[2] or "{}").replace("$namespace", NAMESPACE)
            inner = selector[1:-1]
            label = f"{found[3]}!=''"
            checks.append(
                (
                    f"variable {variable['name']}",
                    f"{found[1]}{{{inner}{', ' if inner else ''}{label}}}",
                )
            )
    for rule in alert_rules(notifier=True):
        if "Notifier" in rule["alert"]:
            checks.append((f"alert {rule['alert']}", measured_part(rule["expr"])))
    return checks


def destinations_file(folder: Path, receiver: HttpReceiver) -> Path:
    path = folder / "notifier.yaml"
    webhook = {"type": "webhook", "secret": {"env": "QS_WEBHOOK_SECRET"}, "max_attempts": 2}
    destinations = [
        {"name": "desk-ok", "url": f"{receiver.url}/ok", **webhook},
        {"name": "ops-refused", "url": f"{receiver.url}/refused", **webhook},
    ]
    path.write_text(json.dumps({"destinations": destinations}))  # JSON is YAML
    return path


def answer(request: Recorded) -> Reply:
    return Reply(400, b"no such hook") if request.path.startswith("/refused") else Reply(200)


def publish(url: str, count: int) -> None:
    client = redis.Redis.from_url(url)
    try:
        for i in range(count):
            signal = {
                "id": f"live-{i}",
                "type": "BUY",
                "symbol": "BTC-USD",
                "price": 100.0 + i,
                "strategy": "sma_cross",
                "timestamp": time.time(),
            }
            client.xadd(history_key(CHANNEL), {"data": json.dumps(signal)})
    finally:
        client.close()


def test_real_prometheus_evaluates_the_notifier_dashboard_and_alerts(tmp_path: Path) -> None:
    pytest.importorskip("notifier.service", reason="the notifier service is not there yet")
    require_binary("promtool")  # the same package as prometheus; CI must have both
    started = time.monotonic()
    receiver = HttpReceiver()
    receiver.respond_with(answer)
    with receiver.start(), own_redis() as server:
        env = {
            "REDIS_URL": server.url,
            "SIGNAL_CHANNEL": CHANNEL,
            "NOTIFIER_CONFIG": str(destinations_file(tmp_path, receiver)),
            "QS_WEBHOOK_SECRET": "live-test-secret",
        }
        notifier = ServiceProcess("notifier", env)
        prom = Prometheus(tmp_path, scrape_config({"notifier": notifier}))
        write_rules(tmp_path, notifier=True)  # with the notifier's group
        try:
            notifier.start(wait_ready=True, timeout_s=45)
            # Both destinations leased and their consumer groups made (at the stream's end):
            # only then are published signals theirs.
            notifier.wait_for(
                lambda: notifier.metric("qs_notifier_destinations_owned") == 2, 30, "leasing"
            )
            prom.start()
            # Publish only once Prometheus holds the counters at 0 (the notifier declares
            # them at start-up): increase() counts from a first sample, as in production,
            # where a replica is scraped long before its first dead letter.
            zero = f'qs_notifier_dead_letters_total{{job="{JOBS["notifier"]}"}} == 0'
            wait_until(lambda: len(prom.query(zero)) == 2, 15, "scraping the notifier", prom)
            publish(server.url, 3)
            receiver.wait_for(6, 30)
            pending = {expr: where for where, expr in notifier_queries()}

            def all_return_series() -> bool:
                for expr in list(pending):
                    if prom.query(expr):
                        del pending[expr]
                return not pending

            wait_until(all_return_series, 30, lambda: f"returning series: {pending}", prom)
            name = "QuantumSignalsNotifierDeadLetters"
            wait_until(lambda: alert_active(prom, name, destination="ops-refused"), 20, name, prom)
            assert not alert_active(prom, name, destination="desk-ok")
            assert not alert_active(prom, "QuantumSignalsNotifierDown")
            notifier.kill()
            wait_until(
                lambda: alert_active(prom, "QuantumSignalsNotifierDown"), 15, "NotifierDown", prom
            )
        finally:
            prom.stop()
            notifier.kill()
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_S, f"took {elapsed:.1f}s"
