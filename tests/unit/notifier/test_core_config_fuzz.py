"""Any destinations file, however odd or hostile, loads or ends in ONE line naming what to
fix: random YAML structures and values, wrong types, duplicate and unknown keys, huge
files, alias bombs, deep nesting, bytes that are not UTF-8; and never a traceback.
A few of them go through ``python -m notifier`` as a subprocess: exit 2, one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.config import MAX_FILE_BYTES, ConfigError, load_config
from tests.support.services import ROOT

SECRET_VALUE = "hunter2-SECRET-value"
KEYS = [
    "destinations",
    "name",
    "type",
    "url",
    "secret",
    "filters",
    "symbols",
    "sides",
    "max_attempts",
    "timeout_s",
    "rate_per_s",
    "bot_token",
    "chat_id",
    "webhook_url",
    "password",
    "env",
    "file",
    "template",
    "host",
    "to",
    "from_addr",
    "x",
]
TYPES = ["webhook", "slack", "discord", "telegram", "email", "sms"]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(TYPES)
    | st.just("https://x.example/")
)
# Given where a secret reference belongs, a value is most likely the secret itself.
SECRET_KEYS = {"secret", "bot_token", "webhook_url", "password"}
secrets_given = st.sampled_from([SECRET_VALUE, "https://x.example/" + SECRET_VALUE, 12345])
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)


def destination(draw: st.DrawFn) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": draw(st.sampled_from(["a", "b", "A!", ""])),
        "type": draw(st.sampled_from(TYPES)),
    }
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=6)):
        refs = st.dictionaries(st.sampled_from(["env", "file", "x"]), scalars, max_size=2)
        base[key] = draw((secrets_given if key in SECRET_KEYS else scalars) | refs)
    return base


@st.composite
def near_valid(draw: st.DrawFn) -> Any:
    """Shaped like a destinations file, so validation gets past the top level."""
    return {"destinations": draw(st.lists(st.composite(destination)(), max_size=3))}


def _assert_one_line_or_loaded(path: Path) -> str | None:
    started = time.monotonic()
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message.strip()
        assert len(message) < 600
        assert SECRET_VALUE not in message
        return message
    finally:
        assert time.monotonic() - started < 5
    return None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=documents | near_valid())
def test_any_yaml_document_loads_or_names_the_key(
    doc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_SET", "set")
    path = tmp_path / "n.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _assert_one_line_or_loaded(path)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_load_or_give_one_line(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_bytes(raw)
    _assert_one_line_or_loaded(path)


def bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines)


HOSTILE = {
    "billion laughs": bomb() + "\ndestinations: *l8\n",
    "bomb in a filter": bomb() + "\ndestinations:\n  - {name: a, type: webhook, url: 'http://x',"
    " secret: {env: QS_SET}, filters: {symbols: *l8}}\n",
    "self-reference": "destinations: &d [*d]\n",
    "deep nesting": "destinations: " + "[" * 5000 + "]" * 5000 + "\n",
    "duplicate key": "destinations: []\ndestinations: []\n",
    "duplicate nested key": "destinations:\n  - {name: a, name: b, type: webhook}\n",
    "not UTF-8": b"destinations: [\xff]\n",
    "huge": "destinations: []\n" + "#" * (MAX_FILE_BYTES + 1),
    "inline slack secret": "destinations:\n  - {name: a, type: slack, webhook_url: "
    f"'https://hooks.slack.com/services/T/B/{SECRET_VALUE}'}}\n",
    "python tag": "!!python/object/apply:os.system ['echo pwned']\n",
}
EXPECTED = {
    "billion laughs": "aliases expanded",
    "bomb in a filter": "aliases expanded",
    "self-reference": "nested deeper",
    "deep nesting": "nested too deeply",
    "duplicate key": "duplicate key 'destinations'",
    "duplicate nested key": "duplicate key 'name'",
    "not UTF-8": "not UTF-8",
    "huge": "larger than",
    "inline slack secret": "destinations[0].webhook_url:",
    "python tag": "could not determine a constructor",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_are_refused_quickly_with_one_line(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_SET", "set")
    path = tmp_path / "n.yaml"
    content = HOSTILE[case]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    message = _assert_one_line_or_loaded(path)
    assert message is not None and EXPECTED[case] in message


@pytest.mark.parametrize(
    "case", ["billion laughs", "duplicate key", "not UTF-8", "inline slack secret"]
)
def test_python_m_notifier_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    content = HOSTILE[case]
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "NOTIFIER_CONFIG": str(path),
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "QS_SET": "set",
    }
    done = subprocess.run(
        [sys.executable, "-m", "notifier"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: "), done.stderr
    assert EXPECTED[case] in lines[0]
    assert SECRET_VALUE not in done.stderr + done.stdout


def _hook(**extra: object) -> str:
    entry = {"name": "a", "type": "webhook", "url": "http://127.0.0.1:9/", **extra}
    entry.setdefault("secret", {"env": "QS_SET"})
    return yaml.safe_dump({"destinations": [entry]})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"backoff_max_s": float("inf")}, "destinations[0].backoff_max_s: "),
        ({"backoff_initial_s": 1e300}, "destinations[0].backoff_initial_s: "),
        ({"circuit_open_s": float("inf")}, "destinations[0].circuit_open_s: "),
        ({"rate_per_s": 1e-300}, "destinations[0].rate_per_s: "),
        ({"timeout_s": float("nan")}, "destinations[0].timeout_s: "),
        ({"secret": {"file": "/dev/zero"}}, "secret file /dev/zero is larger than"),
        ({"secret": {"file": "EMPTY"}}, "is empty"),
        ({"secret": {"file": "BINARY"}}, "is not UTF-8 text"),
    ],
)
def test_values_that_would_stop_a_destination_are_refused_at_start(
    extra: dict[str, Any], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QS_SET", "set")
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    secret = extra.get("secret")
    if isinstance(secret, dict) and secret.get("file") in ("EMPTY", "BINARY"):
        extra = {**extra, "secret": {"file": str(tmp_path / str(secret["file"]).lower())}}
    path = tmp_path / "n.yaml"
    path.write_text(_hook(**extra))
    message = _assert_one_line_or_loaded(path)
    assert message is not None and expected in message, message


@pytest.mark.parametrize(
    "text",
    ['"\\n": 1\n', 'destinations:\n  - {name: a, type: "web\\nhook"}\n', '"a b\\nc": {x: 1}\n'],
)
def test_keys_and_values_with_line_breaks_still_give_one_line(text: str, tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(text)
    assert _assert_one_line_or_loaded(path) is not None
