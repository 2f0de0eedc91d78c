"""``python -m monitor backtest`` as a user runs it: a real subprocess on the shipped sample."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "services/monitor/backtest/sample/BTCUSDT-1h-generated.csv"
REPLAY_SAMPLE = ROOT / "services/monitor/sources/sample_ohlcv.csv"


def monitor(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT / "services")},
        check=False,
    )


class Page(HTMLParser):
    """What the test reads from the report: metric cells, charts, markers, anything external."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[str, str, str]] = []  # (run, metric, exact value)
        self.charts: list[str] = []
        self.markers: dict[str, int] = {}
        self.external: list[str] = []
        self._run = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self._run = a.get("data-run", self._run)
        if "data-metric" in a:
            self.metrics.append((self._run, a["data-metric"], a["data-value"]))
        if tag == "svg":
            self.charts.append(f"{self._run}:{a['class']}")
        if tag == "polygon" and "marker" in a.get("class", ""):
            self.markers[self._run] = self.markers.get(self._run, 0) + 1
        if tag in {"script", "link", "img", "iframe"} or any(k in {"src", "href"} for k in a):
            self.external.append(tag)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def readme_command() -> list[str]:
    """The README's backtest command, as written (after ``python -m monitor``)."""
    section = (ROOT / "README.md").read_text().split("\n### Backtest the strategies", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "monitor"]
    return words[3:]


def test_the_readme_command_writes_a_report_whose_numbers_are_the_json(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    args = readme_command()
    assert args == ["backtest", "--source", "replay", "--file", str(SAMPLE.relative_to(ROOT)),
                    "--strategy", "sma_cross"]  # fmt: skip
    done = monitor(*args, "--strategy", "rsi", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["report"] == str(out) and data["rule"] == "long-only" and data["fee_bps"] == 10
    assert data["strategy_errors"] == {"rsi": 0, "sma_cross": 0}
    runs = {f"{r['strategy']}:{r['symbol']}": r for r in data["runs"]}
    assert set(runs) == {"sma_cross:BTCUSDT", "rsi:BTCUSDT"}
    assert runs["sma_cross:BTCUSDT"]["trades"] > 5

    page = parse(out)
    assert page.external == []  # self-contained: no script, stylesheet, image or link
    for run in runs:
        assert f"{run}:chart price" in page.charts and f"{run}:chart equity" in page.charts
        # One marker per signal on the price chart.
        assert page.markers.get(run, 0) == runs[run]["signals"]
    checked = 0
    for run, metric, shown in page.metrics:
        assert json.loads(shown) == runs[run][metric], (run, metric, shown)
        checked += 1
    # Summary row (11 cells) and the six headline figures of each run.
    assert checked == len(runs) * (11 + 6)

    table = monitor(*args, "--out", str(tmp_path / "again.html"))
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("sma_cross"))
    total = runs["sma_cross:BTCUSDT"]["total_return"]
    assert f"{total * 100:+.2f} %" in row
    again = parse(tmp_path / "again.html").charts
    assert again == [c for c in page.charts if c.startswith("sma_cross:")]


def test_the_replay_format_with_several_symbols_and_a_symbol_filter(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = monitor(
        "backtest", "--file", str(REPLAY_SAMPLE), "--strategy", "macd_cross",
        "--symbol", "ETH-USD", "--symbol", "XRP-USD", "--short", "--fee-bps", "0",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["rule"] == "long-short" and data["format"] == "replay"
    assert [r["symbol"] for r in data["runs"]] == ["ETH-USD", "XRP-USD"]
    assert all(r["timeframe"] == "1m" and r["bars"] == 200 for r in data["runs"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --file, --strategy"),
        (["--file", str(SAMPLE), "--strategy", "nope"], "invalid choice: 'nope'"),
        (["--file", "missing.csv", "--strategy", "rsi"], "missing.csv: no such file"),
        (["--file", str(SAMPLE), "--strategy", "rsi", "--fee-bps", "-1"], "--fee-bps"),
        (
            ["--file", str(SAMPLE), "--strategy", "rsi", "--symbol", "ETHUSDT"],
            "no bars for ETHUSDT",
        ),
        (["--file", str(SAMPLE), "--strategy", "rsi", "--source", "sim"], "invalid choice: 'sim'"),
        (
            [
                "--file",
                str(SAMPLE),
                "--strategy",
                "sma_cross",
                "--params",
                '{"sma_cross": {"fast": 30}}',
            ],
            "needs 1 <= fast < slow",
        ),
        (["--file", str(SAMPLE), "--strategy", "rsi", "--strategy", "rsi"], "each strategy once"),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = monitor("backtest", *args, "--out", str(tmp_path / "x.html"), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and done.stdout == ""
    assert re.search(r"python -m monitor backtest", done.stderr)
    assert not (tmp_path / "x.html").exists()


def test_the_service_command_line_is_unchanged() -> None:
    bogus = monitor("--bogus")
    assert bogus.returncode == 2 and "unrecognized arguments: --bogus" in bogus.stderr
    assert monitor("--version").stdout.startswith("monitor ")
