"""No secret in anything the notifier writes: a real ``python -m notifier`` with all five
destinations failing (HTTP 503, then 400; SMTP with a wrong password), at debug log level;
its log output, /metrics and the dead letters are searched for each secret (the Telegram
token in its URL, the Slack and Discord hook URLs, the webhook HMAC secret, the SMTP
password)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import redis.asyncio as aioredis
import yaml

from common.constants import DEFAULT_CHANNEL, dead_letters_key, notifier_group
from common.publish import SignalPublisher
from tests.integration.notifier.conftest import NotifierFactory, signal, wait_for_group
from tests.support.receivers import HttpReceiver, Reply, SmtpReceiver
from tests.support.services import http_get

TOKEN = "123456789:AAsecretTELEGRAMtokenPART-xyz_0123456"
SECRETS = {
    "QS_T_TOKEN": TOKEN,
    "QS_T_SLACK": "/services/T0/B0/slackSECRETpart",
    "QS_T_DISCORD": "/api/webhooks/42/discordSECRETpart",
    "QS_T_HMAC": "hmacSECRETvalue",
    "QS_T_SMTP": "smtpSECRETpassword",
}
# What must never show: each secret, and its distinctive part alone.
NEEDLES = [
    "AAsecretTELEGRAMtokenPART",
    "slackSECRETpart",
    "discordSECRETpart",
    "hmacSECRETvalue",
    "smtpSECRETpassword",
]


async def test_a_failing_run_writes_no_secret_anywhere(
    redis_client: aioredis.Redis,
    publisher: SignalPublisher,
    config_path: Path,
    notifier_factory: NotifierFactory,
) -> None:
    with HttpReceiver() as rx, SmtpReceiver(users={"qs-bot": "the-right-one"}) as smtp:
        rx.script(Reply(503, body=b"busy"), Reply(503), Reply(503), Reply(503), Reply(503))
        rx.default = Reply(400, body=b'{"ok": false, "error_code": 400, "description": "nope"}')
        common = {
            "filters": {},
            "max_attempts": 2,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.1,
            "timeout_s": 3,
        }
        destinations = [
            {
                "name": "hook",
                "type": "webhook",
                "url": f"{rx.url}/hook",
                "secret": {"env": "QS_T_HMAC"},
            },
            {
                "name": "tg",
                "type": "telegram",
                "bot_token": {"env": "QS_T_TOKEN"},
                "chat_id": "-1001",
                "api_base_url": rx.url,
            },
            {"name": "sl", "type": "slack", "webhook_url": {"env": "QS_T_SLACK_URL"}},
            {"name": "dc", "type": "discord", "webhook_url": {"env": "QS_T_DISCORD_URL"}},
            {
                "name": "mail",
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp.port,
                "username": "qs-bot",
                "password": {"env": "QS_T_SMTP"},
                "ca_file": str(smtp.ca_file),
                "from_addr": "a@qs.example",
                "to": ["b@qs.example"],
            },
        ]
        config_path.write_text(  # noqa: ASYNC240 (a few bytes, before the process starts)
            yaml.safe_dump({"destinations": [{**d, **common} for d in destinations]})
        )
        env = {
            **SECRETS,
            "QS_T_SLACK_URL": rx.url + SECRETS["QS_T_SLACK"],
            "QS_T_DISCORD_URL": rx.url + SECRETS["QS_T_DISCORD"],
            "LOG_LEVEL": "debug",
        }
        proc = notifier_factory("n1", **env)
        for d in destinations:
            await wait_for_group(redis_client, notifier_group(str(d["name"])))
        for i in range(3):
            await publisher.publish(signal(i))
        dead = dead_letters_key(DEFAULT_CHANNEL)
        deadline = time.monotonic() + 25
        while await redis_client.xlen(dead) < 3 * len(destinations):
            assert time.monotonic() < deadline, proc.logs()
            await asyncio.sleep(0.1)
        letters = await redis_client.xrange(dead)
        _, metrics = await asyncio.to_thread(http_get, f"{proc.base_url}/metrics")
        proc.stop()
        written = (
            proc.log_path.read_text()
            + metrics.decode()
            + orjson.dumps(
                [{k.decode(): v.decode() for k, v in f.items()} for _, f in letters]
            ).decode()
        )
        errors = {f[b"destination"].decode(): f[b"error"].decode() for _, f in letters}
        assert set(errors) == {"hook", "tg", "sl", "dc", "mail"}, errors
        assert "535" in errors["mail"] or "uthentication" in errors["mail"], errors["mail"]
        assert "delivery_retry" in written  # the failures were logged, with their errors
        for needle in NEEDLES:
            assert needle not in written, f"{needle} leaked: ...{_around(written, needle)}..."


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(0, at - 200) : at + 60]
