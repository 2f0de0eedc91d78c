"""Each destination's configuration: what it accepts, what it refuses with which key, and
payloads built from any signal and any accepted template without raising."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings

from notifier.config import ConfigError, parse_config
from notifier.destinations import CONFIG_TYPES
from notifier.destinations.base import Delivery
from notifier.destinations.discord import MAX_CONTENT, DiscordConfig, DiscordDestination
from notifier.destinations.email import EmailConfig, EmailDestination
from notifier.destinations.slack import SlackConfig, SlackDestination
from notifier.destinations.telegram import (
    MAX_TEXT,
    TelegramConfig,
    TelegramDestination,
    escape_markdown_v2,
)
from notifier.destinations.templates import check_template
from notifier.destinations.webhook import WebhookConfig, WebhookDestination
from tests.unit.notifier.test_dest_templates import SIGNALS, TEMPLATES

ENV = {
    "QS_T_HOOK": "whsec",
    "QS_T_SLACK": "https://hooks.slack.com/services/T/B/X",
    "QS_T_DISCORD": "https://discord.com/api/webhooks/1/x",
    "QS_T_TOKEN": "123456:ABC-def_ghi",
    "QS_T_SMTP": "pw",
}
EVERY_KIND: dict[str, Any] = {
    "destinations": [
        {"name": "hook", "type": "webhook", "url": "https://h.example/qs",
         "secret": {"env": "QS_T_HOOK"}},
        {"name": "slack", "type": "slack", "webhook_url": {"env": "QS_T_SLACK"}, "blocks": True},
        {"name": "discord", "type": "discord", "webhook_url": {"env": "QS_T_DISCORD"},
         "template": "**$headline** $why"},
        {"name": "tg", "type": "telegram", "bot_token": {"env": "QS_T_TOKEN"},
         "chat_id": -100123, "rate_per_s": 25},
        {"name": "mail", "type": "email", "host": "smtp.example", "username": "qs",
         "password": {"env": "QS_T_SMTP"}, "from_addr": "qs@example.com",
         "to": ["desk@example.com"], "subject": "[$symbol] $headline"},
    ]
}  # fmt: skip


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_registry_has_every_kind_once() -> None:
    kinds = [c.model_fields["type"].default for c in CONFIG_TYPES]
    assert sorted(kinds) == ["discord", "email", "slack", "telegram", "webhook"]


async def test_file_with_every_kind_loads_and_builds() -> None:
    config = parse_config(EVERY_KIND)
    assert [type(d) for d in config.destinations] == [
        WebhookConfig, SlackConfig, DiscordConfig, TelegramConfig, EmailConfig
    ]  # fmt: skip
    telegram = config.by_name("tg")
    assert isinstance(telegram, TelegramConfig) and telegram.chat_id == "-100123"
    for destination_config in config.destinations:
        destination = destination_config.build()
        assert destination.config is destination_config
        await destination.aclose()


def entry(index: int, **changes: Any) -> dict[str, Any]:
    data = {"destinations": [dict(d) for d in EVERY_KIND["destinations"]]}
    data["destinations"][index].update(changes)
    return data


@pytest.mark.parametrize(
    ("index", "changes", "message"),
    [
        (0, {"template": "$summary"}, "destinations[0].template: Value error, a webhook sends"),
        (0, {"url": "ftp://x"}, "destinations[0].url: URL scheme should be"),
        (1, {"template": "$symbl"}, r"destinations[1].template: Value error, unknown placeholder"),
        (1, {"blocks": "maybe"}, "destinations[1].blocks: Input should be a valid boolean"),
        (2, {"webhook_url": "https://x"}, "destinations[2].webhook_url: Input should be"),
        (3, {"chat_id": "general"}, "destinations[3].chat_id: String should match pattern"),
        (3, {"parse_mode": "Markdown"}, "destinations[3].parse_mode: Input should be 'HTML'"),
        (3, {"bot_token": {"env": "QS_T_MISSING"}}, "destinations[3].bot_token: environment"),
        (4, {"to": []}, "destinations[4].to: Tuple should have at least 1 item"),
        (4, {"to": ["desk"]}, "destinations[4].to: Value error, not an e-mail address: 'desk'"),
        (4, {"password": None}, "destinations[4]: Value error, give both 'username' and"),
        (4, {"security": "none"}, "destinations[4]: Value error, a password over an unencr"),
        (4, {"subject": "$$$"}, "destinations[4].subject: Value error, a '$' that starts"),
        (4, {"port": 0}, "destinations[4].port: Input should be greater than or equal to 1"),
        (4, {"colour": "red"}, "destinations[4].colour: Extra inputs are not permitted"),
    ],
)
def test_refusals_name_the_key(index: int, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(entry(index, **changes))
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("QS_T_SLACK", "hooks.slack.com/services/T/B/SECRETPART", "destinations[1].webhook_url:"
         " Value error, the secret is not an http(s) URL"),
        ("QS_T_DISCORD", "ftp://discord.com/SECRETPART", "destinations[2].webhook_url:"
         " Value error, the secret is not an http(s) URL"),
        ("QS_T_TOKEN", "SECRETPART", "destinations[3].bot_token: Value error, not a bot token"),
    ],
)  # fmt: skip
def test_resolved_secrets_checked_without_showing_them(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        parse_config(EVERY_KIND)
    assert str(caught.value).startswith(message)
    assert "SECRETPART" not in str(caught.value)


def test_email_ca_file_must_load(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    for name in ("none.pem", "junk.pem"):
        with pytest.raises(
            ConfigError, match=r"destinations\[4\]\.ca_file: Value error, cannot load"
        ):
            parse_config(entry(4, ca_file=str(tmp_path / name)))


# One client for the payload builders below: they never send, so it never connects.
CLIENT = httpx.AsyncClient()


def delivery(signal: dict[str, Any]) -> Delivery:
    return Delivery(signal, "key", "1-0")


def _accepted(template: str) -> bool:
    try:
        check_template(template)
    except ValueError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(TEMPLATES.filter(_accepted), SIGNALS)
def test_payloads_never_raise(template: str, signal: dict[str, Any]) -> None:
    slack = SlackDestination(
        SlackConfig.model_validate({**EVERY_KIND["destinations"][1], "template": template}),
        client=CLIENT,
    )
    assert slack.payload(delivery(signal))["text"].strip()
    discord = DiscordDestination(
        DiscordConfig.model_validate(
            {**EVERY_KIND["destinations"][2], "template": template, "embed": True}
        ),
        client=CLIENT,
    )
    body = discord.payload(delivery(signal))
    assert 0 < len(body["content"]) <= MAX_CONTENT
    for mode in ("HTML", "MarkdownV2", None):
        telegram = TelegramDestination(
            TelegramConfig.model_validate(
                {**EVERY_KIND["destinations"][3], "template": template, "parse_mode": mode}
            ),
            client=CLIENT,
        )
        assert 0 < len(telegram.payload(delivery(signal))["text"]) <= MAX_TEXT
    mail = EmailDestination(
        EmailConfig.model_validate(
            {**EVERY_KIND["destinations"][4], "template": template, "subject": template}
        )
    )
    message = mail.message(Delivery(signal, "k\r\ney", "1-0"))
    assert message["Subject"] and message.as_bytes()
    hook_config = parse_config(EVERY_KIND).destinations[0]
    assert isinstance(hook_config, WebhookConfig)
    hook = WebhookDestination(hook_config, client=CLIENT)
    if _json_safe(signal):
        body_bytes, headers = hook.request(delivery(signal))
        assert body_bytes and all(" " <= c <= "~" for v in headers.values() for c in v)


def _json_safe(value: object) -> bool:
    # orjson writes NaN as null but refuses ints beyond 64 bits, which a JSON-parsed
    # stream entry never holds.
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return True


def test_markdown_v2_escapes_every_special() -> None:
    special = "_*[]()~`>#+-=|{}.!\\"
    assert escape_markdown_v2(special) == "".join("\\" + c for c in special)
    assert escape_markdown_v2("abc 123") == "abc 123"


def test_overlong_telegram_markup_goes_as_plain_text() -> None:
    config = TelegramConfig.model_validate(
        {**EVERY_KIND["destinations"][3], "template": "<b>$reason</b>" * 30}
    )
    destination = TelegramDestination(config, client=CLIENT)
    body = destination.payload(delivery({"type": "BUY", "price": 1, "reason": "a&b" * 60}))
    assert "parse_mode" not in body and len(body["text"]) == MAX_TEXT
    assert body["text"].startswith("<b>a&ba&b") and body["text"].endswith("…")
    short = destination.payload(delivery({"type": "BUY", "price": 1, "reason": "a&b"}))
    assert short["parse_mode"] == "HTML" and short["text"].startswith("<b>a&amp;b</b>")
