"""``python -m monitor``: run one monitor process (configure with environment variables)."""

from __future__ import annotations

import asyncio
import signal

from common.logging import configure_logging, get_logger
from common.redis import RedisUnavailableError
from common.settings import load_settings
from monitor.settings import MonitorSettings
from monitor.worker import Worker

log = get_logger("monitor")


async def serve(settings: MonitorSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await Worker(settings).run(stop)
    except RedisUnavailableError as exc:
        log.error("startup_failed", error=str(exc))
        return 1
    return 0


def main() -> None:
    settings = load_settings(MonitorSettings)
    configure_logging(settings.log_level, settings.log_format)
    raise SystemExit(asyncio.run(serve(settings)))


if __name__ == "__main__":
    main()
