"""``python -m notifier dead-letters list|retry|drop``: inspect and re-drive dead letters.

``retry`` delivers each chosen dead letter straight through its destination (built from
the destinations file, ``NOTIFIER_CONFIG``), one attempt, with its original idempotency
key; an accepted one leaves the dead letters, a refused one stays with its error printed.
It does not go back into the destination's stream: a dead letter is out of order by
definition, and the operator sees the receiver's answer at once. Redis and the file come
from the same environment variables as the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from common.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from common.redis import REDIS_ERRORS, redis_client
from common.schema import SignalRejected, parse_signal
from common.settings import load_settings
from notifier.config import ConfigError, load_config
from notifier.deadletters import DeadLetter, DeadLetters
from notifier.delivery import SEND_TIMEOUT_MARGIN_S
from notifier.destinations.base import Delivery, DeliveryError, Destination
from notifier.settings import NotifierSettings

PROG = "python -m notifier dead-letters"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and re-drive the notifier's dead letters "
        "(REDIS_URL, SIGNAL_CHANNEL and NOTIFIER_CONFIG as for the service).",
        allow_abbrev=False,
    )
    sub = top.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="oldest first", allow_abbrev=False)
    listing.add_argument("--destination", help="only this destination's")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text in (
        ("retry", "deliver again through the destination; delivered ones are removed"),
        ("drop", "remove for good"),
    ):
        cmd = sub.add_parser(name, help=text, allow_abbrev=False)
        cmd.add_argument("ids", nargs="*", metavar="ID", help="dead-letter ids (from list)")
        cmd.add_argument("--all", action="store_true", help="every dead letter")
        cmd.add_argument("--destination", help="with --all: only this destination's")
    return top


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command in ("retry", "drop") and bool(args.ids) == bool(args.all):
        print(f"{PROG} {args.command}: give dead-letter ids or --all", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings(NotifierSettings, [])
    return asyncio.run(run(settings, args))


async def run(settings: NotifierSettings, args: argparse.Namespace) -> int:
    redis = redis_client(settings)
    letters = DeadLetters(redis, settings.signal_channel, settings.notifier_dead_letters_maxlen)
    try:
        if args.command == "list":
            return await list_letters(letters, args.destination, args.limit, args.json)
        chosen, missing = await choose(letters, args.ids, args.all, args.destination)
        if args.command == "drop":
            dropped = await letters.drop(letter.id for letter in chosen)
            print(f"dropped {dropped} of {len(chosen) + missing}")
            return EXIT_OK if dropped == len(chosen) and not missing else EXIT_FAILURE
        code = await retry(settings, letters, chosen)
        return EXIT_FAILURE if missing and code == EXIT_OK else code
    except REDIS_ERRORS as exc:
        print(f"{PROG}: Redis: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        await redis.aclose()


async def list_letters(
    letters: DeadLetters, destination: str | None, limit: int, as_json: bool
) -> int:
    for letter in await letters.list(destination, limit):
        if as_json:
            print(json.dumps(letter.as_dict()))
        else:
            when = datetime.fromtimestamp(letter.failed_at, UTC).isoformat(timespec="seconds")
            print(
                f"{letter.id}  {letter.destination}  entry={letter.entry_id}  "
                f"key={letter.idempotency_key}  attempts={letter.attempts}  failed_at={when}  "
                f"error={letter.error}"
            )
    return EXIT_OK


async def choose(
    letters: DeadLetters, ids: list[str], everything: bool, destination: str | None
) -> tuple[list[DeadLetter], int]:
    """The dead letters named (or all), and how many named ones do not exist."""
    if everything:
        total = await letters.length()
        return await letters.list(destination, max(total, 1)), 0
    found = await letters.get(ids)
    missing = [i for i, letter in found.items() if letter is None]
    if missing:
        print(f"not in {letters.key}: {', '.join(missing)}", file=sys.stderr)
    return [letter for letter in found.values() if letter is not None], len(missing)


async def retry(settings: NotifierSettings, letters: DeadLetters, chosen: list[DeadLetter]) -> int:
    try:
        config = load_config(settings.notifier_config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    built = {}
    failed = 0
    try:
        for letter in chosen:
            if letter.destination not in config.names():
                print(f"{letter.id}: destination {letter.destination!r} is not in the file")
                failed += 1
                continue
            if letter.destination not in built:
                built[letter.destination] = config.by_name(letter.destination).build()
            destination = built[letter.destination]
            error = await _send_once(destination, letter, settings.max_message_bytes)
            if error is not None:
                print(f"{letter.id}: still refused: {error}")
                failed += 1
                continue
            await letters.drop([letter.id])
            print(f"{letter.id}: delivered to {letter.destination}")
    finally:
        for destination in built.values():
            await destination.aclose()
    return EXIT_FAILURE if failed else EXIT_OK


async def _send_once(destination: Destination, letter: DeadLetter, max_bytes: int) -> str | None:
    """One attempt, as the delivery loop makes it: the same signal contract (a malformed
    entry's dead letter stays one) and the same deadline (a receiver that never finishes
    its answer cannot hang the command). None when accepted, else why not."""
    try:
        signal = parse_signal(letter.data, max_bytes)
    except SignalRejected as exc:
        return f"not a signal: {exc}"
    delivery = Delivery(signal, letter.idempotency_key, letter.entry_id, letter.attempts + 1)
    deadline = destination.config.timeout_s + SEND_TIMEOUT_MARGIN_S
    try:
        await asyncio.wait_for(destination.send(delivery), deadline)
    except DeliveryError as exc:
        return str(exc)
    except TimeoutError:
        return f"no answer within {destination.config.timeout_s} s"
    except Exception as exc:  # a destination bug: reported, the others still tried
        return f"{type(exc).__name__}: {exc}"
    return None
