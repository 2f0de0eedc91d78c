"""``python -m notifier``: run one notifier process (environment variables and the
destinations file configure it); ``python -m notifier dead-letters ...``: inspect and
re-drive dead letters (``notifier.cli``).

Exit codes (common.cli): 0 stopped on request, 1 unexpected failure, 2 bad argument,
setting or destinations file, 69 Redis unreachable at start-up.
"""

from __future__ import annotations

import sys

from common.cli import EXIT_FAILURE, EXIT_OK, EXIT_REDIS_UNAVAILABLE, EXIT_USAGE
from common.http import ListenError
from common.lifecycle import StartupCancelled, StopSignals, run_service, startup_failed
from common.logging import adopt_library_loggers, configure_logging, get_logger
from common.redis import RedisUnavailableError
from common.settings import load_settings
from notifier.config import ConfigError, NotifierConfig, load_config
from notifier.service import Notifier
from notifier.settings import NotifierSettings

SERVICE = "notifier"
log = get_logger(SERVICE)


async def serve(settings: NotifierSettings, config: NotifierConfig) -> int:
    signals = StopSignals(log)
    notifier = Notifier(settings, config)
    adopt_library_loggers()
    try:
        await notifier.run(signals.stopped)
    except (StartupCancelled, RedisUnavailableError) as exc:
        await notifier.redis.aclose()
        await notifier.stream_redis.aclose()
        if isinstance(exc, StartupCancelled):
            log.info("startup_cancelled")
            return EXIT_OK
        return startup_failed(log, "redis_unavailable", exc, EXIT_REDIS_UNAVAILABLE)
    except ListenError as exc:  # the loops have shut down already
        return startup_failed(log, "cannot_listen", exc, EXIT_FAILURE)
    return EXIT_OK


def config_or_exit(settings: NotifierSettings) -> NotifierConfig:
    """The destinations file, or one line naming the bad key and exit 2."""
    try:
        return load_config(settings.notifier_config)
    except ConfigError as exc:
        line = " ".join(str(exc).splitlines())  # one line, whatever a message holds
        print(f"configuration error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def main() -> None:
    if sys.argv[1:2] == ["dead-letters"]:
        from notifier.cli import main as dead_letters

        raise SystemExit(dead_letters(sys.argv[2:]))
    settings = load_settings(NotifierSettings)
    config = config_or_exit(settings)
    configure_logging(settings.log_level, settings.log_format, service=SERVICE)
    run_service(lambda: serve(settings, config), log)


if __name__ == "__main__":
    main()
