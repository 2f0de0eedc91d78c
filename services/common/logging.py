"""structlog set-up: one JSON event per line, or a console renderer on a TTY.

Our own events go through structlog; libraries (uvicorn, redis-py, ccxt, asyncio) log
through the stdlib, whose root handler renders them with the same processors
(``ProcessorFormatter``), so with JSON on, every line on stderr is one JSON object,
tracebacks included, and each names the service that wrote it.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from common.settings import LogFormat, LogLevel


def configure_logging(level: LogLevel = "info", fmt: LogFormat = "auto", service: str = "") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        shared.append(_add_service(service))
    rendering: list[Processor] = (
        [structlog.dev.ConsoleRenderer()]
        if use_console
        # A traceback becomes one string field: no frame locals (a library frame may hold
        # a password), and "Traceback (most recent call last)" stays greppable.
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries stay quiet unless they warn: their INFO lines would drown ours.
    root.setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn() becomes a record like any other
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def adopt_library_loggers() -> None:
    """Remove the plain console handlers libraries attach to their own loggers.

    python-engineio and python-socketio add a ``StreamHandler`` to ``engineio.server`` and
    ``socketio.server`` when a server is built, so each of their records would print twice,
    once as plain text. Call it after the service has built its libraries' objects; their
    records still reach the root handler, rendered like every other line.
    """
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger):
            continue  # a placeholder for a logger nobody has created
        for handler in list(logger.handlers):
            # Exactly StreamHandler: a FileHandler (a subclass) or NullHandler stays.
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)


def _add_service(service: str) -> Processor:
    def add(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    # Without this, Python prints a crash's traceback as plain lines between the JSON ones.
    get_logger("uncaught").critical("uncaught_exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return  # what the default hook ignores too
    get_logger("uncaught").critical(
        "uncaught_exception",
        thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
