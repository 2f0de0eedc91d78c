"""``qs``: tail, publish, history, broadcast, and a webhook receiver, from a shell.

Exit codes: 0 ok (Ctrl-C included), 1 the server answered with an error, 2 usage,
3 no gateway reachable, 4 credentials refused.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from qs_client import __version__
from qs_client.api import ApiClient
from qs_client.errors import ApiError, AuthRefused, GatewayUnreachable
from qs_client.format import json_line, recovery_line, signal_line
from qs_client.models import Recovery, Signal
from qs_client.stream import SignalStream
from qs_client.webhooks import Received, listen

EXIT_OK, EXIT_SERVER, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_AUTH = 0, 1, 2, 3, 4
DEFAULT_URL = "http://127.0.0.1:8000"
Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _urls(args: argparse.Namespace) -> list[str]:
    if args.url:
        return list(args.url)
    env = os.environ.get("QS_URL", "")
    return [u.strip() for u in env.split(",") if u.strip()] or [DEFAULT_URL]


def _use_json(args: argparse.Namespace) -> bool:
    return bool(args.json) or not sys.stdout.isatty()


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _out(line: str) -> None:
    print(line, flush=True)  # flushed per line: `qs tail | jq` sees each signal at once


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _tail(args: argparse.Namespace) -> int:
    as_json, seen = _use_json(args), 0
    stream = SignalStream(
        _urls(args),
        symbols=args.symbol,
        offset=args.offset,
        offset_file=args.offset_file,
        token=args.token,
        give_up_after_s=args.give_up_after,
    )
    async with stream:
        async for item in stream:
            if isinstance(item, Recovery):
                _err(recovery_line(item))  # stdout stays signals only
                continue
            assert isinstance(item, Signal)
            _out(json_line(item.to_dict()) if as_json else signal_line(item, color=_color()))
            seen += 1
            if args.count is not None and seen >= args.count:
                break
    return EXIT_OK


async def _publish(args: argparse.Namespace) -> int:
    signal: dict[str, Any] = {"type": args.type, "price": args.price}
    for key in ("symbol", "strategy", "id"):
        if getattr(args, key) is not None:
            signal[key] = getattr(args, key)
    async with ApiClient(_urls(args)[0], token=args.token) as api:
        answer = await api.publish(signal)
    if args.json:
        _out(json_line(answer))
        return EXIT_OK
    for result in answer.get("results", []):
        verb = "duplicate of" if result.get("duplicate") else "published"
        _out(f"{verb} {result.get('id')} at {result.get('offset')}")
    return EXIT_OK


async def _history(args: argparse.Namespace) -> int:
    filters = {k: getattr(args, k) for k in ("symbol", "strategy", "type", "since", "until")}
    async with ApiClient(_urls(args)[0], token=args.token) as api:
        page = await api.history(**filters, limit=args.limit, order=args.order, cursor=args.cursor)
    for data in page.get("signals", []):
        line = signal_line(Signal.from_dict(data), color=_color())
        _out(json_line(data) if _use_json(args) else line)
    if page.get("next_cursor") and not _use_json(args):
        _err(f"more: --cursor {page['next_cursor']}")
    return EXIT_OK


async def _broadcast(args: argparse.Namespace) -> int:
    async with ApiClient(_urls(args)[0], token=args.token) as api:
        await api.broadcast(args.message, args.level)
    _out(f"broadcast sent ({args.level})")
    return EXIT_OK


async def _webhook_listen(args: argparse.Namespace) -> int:
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        _err(f"qs: the webhook secret is not set: export {args.secret_env}=<the notifier's>")
        return EXIT_USAGE
    as_json, color = _use_json(args), _color()

    def delivered(received: Received) -> None:
        if as_json:
            _out(json_line({**received.signal.to_dict(), "_attempt": received.attempt}))
            return
        note = f"  (attempt {received.attempt}, key {received.idempotency_key}"
        note += ", a repeat: drop it)" if received.duplicate else ")"
        _out(signal_line(received.signal, color=color) + note)

    server = listen(args.host, args.port, secret, delivered, _err)
    _err(f"qs: verifying webhooks on http://{args.host}:{server.server_port}/ (Ctrl-C stops)")
    # Served on this thread, not in an executor: Ctrl-C then ends serve_forever at once.
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qs",
        description="Quantum Signals from the command line.",
        epilog="exit codes: 0 ok, 1 server error, 2 usage, 3 unreachable, 4 auth refused",
    )
    parser.add_argument("--version", action="version", version=f"qs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        action="append",
        metavar="URL",
        help=f"gateway URL, repeatable (default: $QS_URL, comma-separated, or {DEFAULT_URL})",
    )
    _tail_parser(sub, common)
    _publish_parser(sub, common)
    _history_parser(sub, common)
    b = sub.add_parser("broadcast", parents=[common], help="send a system message (admin)")
    b.add_argument("message")
    b.add_argument("--level", choices=["info", "warning", "critical"], default="info")
    b.add_argument("--token", default=os.environ.get("QS_ADMIN_TOKEN"), help="$QS_ADMIN_TOKEN")
    b.set_defaults(run=_broadcast)
    _webhook_parser(sub)
    return parser


def _webhook_parser(sub: Any) -> None:
    w = sub.add_parser(
        "webhook-listen", help="receive the notifier's webhooks, check signatures, print signals"
    )
    w.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    w.add_argument("--port", type=int, default=8004, help="port (8004)")
    w.add_argument(
        "--secret-env",
        default="QS_WEBHOOK_SECRET",
        metavar="VAR",
        help="environment variable holding the shared secret (QS_WEBHOOK_SECRET)",
    )
    w.add_argument("--json", action="store_true", help="JSON lines (default when not a TTY)")
    w.set_defaults(run=_webhook_listen)


def _tail_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    t = sub.add_parser("tail", parents=[common], help="print signals as they come, resuming")
    t.add_argument("--symbol", action="append", help="only this symbol, repeatable")
    t.add_argument("--json", action="store_true", help="JSON lines (default when not a TTY)")
    t.add_argument("--offset", help="resume after this offset ('<epoch>:<ms>-<seq>')")
    t.add_argument("--offset-file", help="keep the last offset here; resume from it")
    t.add_argument("--token", default=os.environ.get("QS_TOKEN"), help="client JWT ($QS_TOKEN)")
    t.add_argument("--count", type=int, help="exit after this many signals")
    t.add_argument(
        "--give-up-after", type=float, default=30.0, help="seconds without a gateway (30)"
    )
    t.set_defaults(run=_tail)


def _publish_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("publish", parents=[common], help="publish one signal (POST /api/signals)")
    p.add_argument("--type", required=True, choices=["BUY", "SELL"], type=str.upper)
    p.add_argument("--price", required=True, type=float)
    p.add_argument("--symbol")
    p.add_argument("--strategy")
    p.add_argument("--id", help="idempotency key (the gateway makes one when absent)")
    p.add_argument("--json", action="store_true", help="print the JSON answer")
    p.add_argument("--token", default=os.environ.get("QS_PUBLISH_TOKEN"), help="$QS_PUBLISH_TOKEN")
    p.set_defaults(run=_publish)


def _history_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    h = sub.add_parser("history", parents=[common], help="query past signals (GET /api/signals)")
    h.add_argument("--symbol")
    h.add_argument("--strategy")
    h.add_argument("--type", choices=["BUY", "SELL"], type=str.upper)
    h.add_argument("--since", help="offset, ISO 8601 time or Unix seconds")
    h.add_argument("--until", help="offset, ISO 8601 time or Unix seconds")
    h.add_argument("--limit", type=int, default=20, help="at most this many (20)")
    h.add_argument("--order", choices=["asc", "desc"], default="desc")
    h.add_argument("--cursor", help="next_cursor of the previous page")
    h.add_argument("--json", action="store_true", help="JSON lines (default when not a TTY)")
    h.add_argument("--token", default=os.environ.get("QS_TOKEN"), help="client JWT ($QS_TOKEN)")
    h.set_defaults(run=_history)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Command = args.run
    try:
        return asyncio.run(command(args))
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `qs tail | head`: the reader is gone, nothing is wrong
        sys.stderr.close()
        return EXIT_OK
    except AuthRefused as exc:
        _err(f"qs: refused: {exc.reason}")
        return EXIT_AUTH
    except GatewayUnreachable as exc:
        _err(f"qs: unreachable: {exc}")
        return EXIT_UNREACHABLE
    except ApiError as exc:
        _err(f"qs: server error: {exc}")
        return EXIT_SERVER


if __name__ == "__main__":
    sys.exit(main())
