"""The destinations file: a bad one is refused with one line naming the key path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest

from notifier.config import ConfigError, load_config, parse_config
from notifier.destinations.base import DestinationConfig, SecretRef
from notifier.destinations.webhook import WebhookConfig
from tests.support.services import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "notifier.yaml"


class ProbeConfig(DestinationConfig):
    """A second type, so the union is a real discriminated one whatever CONFIG_TYPES holds."""

    type: Literal["probe"] = "probe"
    token: SecretRef | None = None


TYPES = (WebhookConfig, ProbeConfig)


def error_of(data: object, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, TYPES)
    message = str(info.value)
    assert "\n" not in message
    return message


def hook(**extra: object) -> dict[str, object]:
    return {
        "name": "h",
        "type": "webhook",
        "url": "http://127.0.0.1:1/x",
        "secret": {"env": "QS_TEST_SECRET"},
        **extra,
    }


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QS_TEST_SECRET", "s3cret")


def test_the_example_file_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QS_WEBHOOK_SECRET", "x")
    text = EXAMPLE.read_text().replace("/run/secrets/qs-audit-webhook", str(tmp_path / "s"))
    (tmp_path / "s").write_text("audit-key\n")
    (tmp_path / "n.yaml").write_text(text)
    config = load_config(tmp_path / "n.yaml")
    assert config.names() == ["ops-webhook", "all-signals"]
    first = config.by_name("ops-webhook")
    assert first.max_attempts == 20
    assert first.filters.matches({"symbol": "BTC-USD", "type": "BUY"})
    assert not first.filters.matches({"symbol": "SOL-USD", "type": "BUY"})


def test_a_missing_secret_names_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QS_MISSING", raising=False)
    probe = {"name": "p", "type": "probe", "token": {"env": "QS_MISSING"}}
    data = {"destinations": [hook(), probe]}
    assert error_of(data) == (
        "destinations[1].token: environment variable QS_MISSING is not set or empty"
    )


def test_a_bad_field_names_its_path_without_the_union_branch() -> None:
    message = error_of({"destinations": [hook(max_attempts=0)]})
    assert message.startswith("destinations[0].max_attempts: Input should be greater than")
    assert "(got 0)" in message


def test_nested_keys_unknown_keys_and_missing_ones() -> None:
    assert error_of({"destinations": [hook(filters={"sides": ["HOLD"]})]}).startswith(
        "destinations[0].filters: Value error, sides may be"
    )
    assert error_of({"destinations": [hook(colour="red")]}).startswith(
        "destinations[0].colour: Extra inputs are not permitted"
    )
    missing = {k: v for k, v in hook().items() if k != "url"}
    assert error_of({"destinations": [missing]}) == "destinations[0].url: Field required"
    assert error_of({"destination": []}).startswith("destination: Extra inputs")


def test_an_unknown_type_lists_the_known_ones() -> None:
    message = error_of({"destinations": [hook(type="pager")]})
    assert message.startswith("destinations[0]: Input tag 'pager' found using 'type'")
    assert "'webhook'" in message and "'probe'" in message


def test_duplicate_names_and_bad_names() -> None:
    assert error_of({"destinations": [hook(), hook()]}) == (
        "destinations[1].name: 'h' is already the name of destinations[0]"
    )
    assert error_of({"destinations": [hook(name="Ops Hook")]}).startswith(
        "destinations[0].name: String should match pattern"
    )


def test_several_errors_are_still_one_line() -> None:
    message = error_of({"destinations": [hook(max_attempts=0, timeout_s=-1)]})
    assert message.endswith("(and 1 more)")


def test_the_file_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^NOTIFIER_CONFIG: cannot read .*: No such file"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("destinations:\n  - name: a\n   type: webhook\n")
    with pytest.raises(ConfigError, match=r"bad.yaml line 3 column 4: not valid YAML"):
        load_config(bad, TYPES)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad, TYPES)
    bad.write_text("")
    assert load_config(bad, TYPES).destinations == ()


def test_the_service_stops_with_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(
        "destinations:\n"
        "  - name: ops\n    type: webhook\n    url: http://127.0.0.1:9/x\n"
        "    secret: {env: QS_SURELY_UNSET}\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "NOTIFIER_CONFIG": str(path),
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    env.pop("QS_SURELY_UNSET", None)
    done = subprocess.run(
        [sys.executable, "-m", "notifier"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "configuration error: destinations[0].secret: "
        "environment variable QS_SURELY_UNSET is not set or empty"
    ]


CONTRACT_EXAMPLE = """
destinations:
  - name: ops-webhook
    type: webhook
    url: https://hooks.example.com/qs
    secret: {env: QS_TEST_SECRET}
    filters: {symbols: [BTC-USD], sides: [BUY]}
    max_attempts: 8
  - name: desk-telegram
    type: telegram
    bot_token: {env: QS_TELEGRAM_TOKEN_UNSET}
    chat_id: "-100123"
    rate_per_s: 25
"""


def test_the_contracts_example_with_the_registered_destinations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QS_TELEGRAM_TOKEN_UNSET", raising=False)
    path = tmp_path / "n.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    with pytest.raises(ConfigError) as info:
        load_config(path)  # CONFIG_TYPES, as the service reads it
    assert str(info.value) == (
        "destinations[1].bot_token: "
        "environment variable QS_TELEGRAM_TOKEN_UNSET is not set or empty"
    )
    monkeypatch.setenv("QS_TELEGRAM_TOKEN_UNSET", "123456:" + "A" * 35)
    assert load_config(path).names() == ["ops-webhook", "desk-telegram"]
