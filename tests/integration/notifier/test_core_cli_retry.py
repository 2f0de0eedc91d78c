"""``python -m notifier dead-letters retry`` on dead letters that are not signals (a
malformed history entry's, or written by hand) and against a receiver that never finishes
its answer: one line each, exit 1, the letters kept; never a traceback, never a hang."""

from __future__ import annotations

import time
from pathlib import Path

from common.constants import DEFAULT_CHANNEL, dead_letters_key
from tests.integration.notifier.conftest import Rig, write_config
from tests.integration.notifier.test_core_delivery import dead_letters_cli
from tests.integration.notifier.test_core_receivers import raw_server, slowloris

DEAD = dead_letters_key(DEFAULT_CHANNEL)


def letter(data: bytes) -> dict[str, bytes]:
    return {
        b"destination": b"ops-webhook",
        b"entry_id": b"1-1",
        b"idempotency_key": b"k",
        b"data": data,
        b"error": b"malformed history entry",
        b"attempts": b"0",
        b"failed_at": b"1.0",
    }


async def test_retry_of_letters_that_are_not_signals_says_so(rig: Rig) -> None:
    bodies = [b"[1, 2]", b"5", b'{"price": 1}', b"not json", b"\xff\xfe", b""]
    ids = [(await rig.redis.xadd(DEAD, letter(b))).decode() for b in bodies]
    done = dead_letters_cli(rig, "retry", "--all")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ids
    assert all(": still refused: not a signal: " in line for line in lines), lines
    assert rig.receiver.requests == []
    assert await rig.redis.xlen(DEAD) == len(bodies)


async def test_retry_against_a_receiver_that_never_answers_ends(rig: Rig, tmp_path: Path) -> None:
    with raw_server(slowloris) as url:
        write_config(rig.config_path, url + "/hook", timeout_s=1)
        good = b'{"type": "BUY", "price": 1.0, "id": "k"}'
        entry = (await rig.redis.xadd(DEAD, letter(good))).decode()
        started = time.monotonic()
        done = dead_letters_cli(rig, "retry", entry)
        took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{entry}: still refused: no answer within 1.0 s" in done.stdout
    assert took < 15
