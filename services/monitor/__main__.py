"""``python -m monitor``: run one monitor process (configure with environment variables).

``python -m monitor backtest ...`` runs the strategies over a file instead (monitor.backtest).

Exit codes (common.cli): 0 stopped on request, 1 unexpected failure, 2 bad argument or
setting, 69 Redis unreachable at start-up.
"""

from __future__ import annotations

import sys

from common.cli import EXIT_FAILURE, EXIT_OK, EXIT_REDIS_UNAVAILABLE
from common.http import ListenError
from common.lifecycle import StartupCancelled, StopSignals, run_service, startup_failed
from common.logging import adopt_library_loggers, configure_logging, get_logger
from common.redis import RedisUnavailableError
from common.settings import load_settings
from monitor.settings import MonitorSettings
from monitor.worker import Worker

SERVICE = "monitor"
log = get_logger(SERVICE)


async def serve(settings: MonitorSettings) -> int:
    signals = StopSignals(log)
    worker = Worker(settings)
    adopt_library_loggers()
    try:
        await worker.run(signals.stopped)
    except (StartupCancelled, RedisUnavailableError) as exc:
        # Start-up ended before the worker owned anything but its connections.
        await worker.source.aclose()
        await worker.redis.aclose()
        if isinstance(exc, StartupCancelled):
            log.info("startup_cancelled")
            return EXIT_OK
        return startup_failed(log, "redis_unavailable", exc, EXIT_REDIS_UNAVAILABLE)
    except ListenError as exc:  # the worker has shut its loops down already
        return startup_failed(log, "cannot_listen", exc, EXIT_FAILURE)
    return EXIT_OK


def main() -> None:
    if sys.argv[1:2] == ["backtest"]:
        # Imported here: the service never loads the report code, and vice versa.
        from monitor.backtest.cli import main as backtest

        raise SystemExit(backtest(sys.argv[2:]))
    settings = load_settings(MonitorSettings)
    configure_logging(settings.log_level, settings.log_format, service=SERVICE)
    run_service(lambda: serve(settings), log)


if __name__ == "__main__":
    main()
