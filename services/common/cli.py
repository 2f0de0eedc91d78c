"""What both service processes share on the outside: command line, exit codes, version.

Settings come from environment variables (``common.settings``); the command line only
answers ``--help`` and ``--version``, and refuses anything else, so a typo such as
``--port 9000`` can never start a service on its defaults.
"""

from __future__ import annotations

import argparse
import os
from importlib.metadata import PackageNotFoundError, version

#: Stopped on request (SIGTERM or Ctrl-C), also while still starting.
EXIT_OK = 0
#: Anything unexpected (a bug, the port already in use); the log has the traceback.
EXIT_FAILURE = 1
#: A bad command-line argument or setting (argparse's own convention).
EXIT_USAGE = 2
#: Redis did not answer within REDIS_STARTUP_ATTEMPTS at start-up (sysexits EX_UNAVAILABLE).
EXIT_REDIS_UNAVAILABLE = 69
#: An installed library breaks an assumption the gateway relies on (sysexits EX_SOFTWARE).
EXIT_INCOMPATIBLE_LIBRARY = 70

DISTRIBUTION = "quantum-signals"


def package_version() -> str:
    """The installed distribution's version; the images run from source (PYTHONPATH), so
    there it is the image's VERSION build argument (``QS_VERSION``)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return os.environ.get("QS_VERSION") or "0+unknown"


def parse_command_line(
    service: str, settings_help: str, argv: list[str], commands: str = ""
) -> None:
    """Answer ``--help`` / ``--version`` (exit 0); refuse any other argument (exit 2).

    ``commands`` names the service's subcommands (handled before this), for ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m {service}",
        description=f"Run one {service} process. It is configured by environment variables "
        f"only.{commands}",
        epilog=settings_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # No abbreviations: "--vers" is a typo to refuse, not a spelling to guess.
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"{service} {package_version()}")
    parser.parse_args(argv)
