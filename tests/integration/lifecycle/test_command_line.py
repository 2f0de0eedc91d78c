"""The command line: --version, refused arguments, setting errors naming their variable."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from common.cli import EXIT_USAGE
from tests.integration.lifecycle.processes import SERVICES, run


@pytest.mark.parametrize("module", SERVICES)
def test_version_prints_the_package_version(module: str) -> None:
    result = run(module, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{module} {version('quantum-signals')}"


@pytest.mark.parametrize("args", [["--bogus"], ["--port", "9000"], ["serve"], ["--vers"]])
@pytest.mark.parametrize("module", SERVICES)
def test_unknown_arguments_are_refused_with_the_usage_line(module: str, args: list[str]) -> None:
    result = run(module, *args)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stderr.startswith(f"usage: python -m {module} [-h] [--version]\n")
    assert "unrecognized arguments" in result.stderr and args[0] in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("module", SERVICES)
def test_help_shows_usage_and_every_setting(module: str) -> None:
    result = run(module, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module}")
    assert "--version" in result.stdout and "REDIS_STARTUP_ATTEMPTS" in result.stdout


@pytest.mark.parametrize(
    ("module", "command"), [("monitor", "backtest"), ("notifier", "dead-letters")]
)
def test_help_names_the_subcommands_and_each_answers_its_own_help(
    module: str, command: str
) -> None:
    assert f"python -m {module} {command} --help" in run(module, "--help").stdout
    result = run(module, command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and command in result.stdout.splitlines()[0]


@pytest.mark.parametrize(
    ("module", "env", "variable"),
    [
        ("monitor", {"STRATEGIES": "foo"}, "STRATEGIES"),
        ("monitor", {"PORT": "eighty"}, "PORT"),
        ("monitor", {"PORT": "70000"}, "PORT"),
        ("gateway", {"PORT": "0"}, "PORT"),
        ("gateway", {"ADMIN_TOKEN": "changeme"}, "ADMIN_TOKEN"),
    ],
)
def test_a_setting_error_names_its_environment_variable(
    module: str, env: dict[str, str], variable: str
) -> None:
    result = run(module, **env)
    assert result.returncode == EXIT_USAGE, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), lines
    # "configuration error: ADMIN_TOKEN, ENVIRONMENT: ..." names the variable at fault first.
    named = lines[0].removeprefix("configuration error: ").split(": ")[0].split(", ")
    assert named[0] == variable, lines
