"""Start-up configuration checks, as the services run them."""

from __future__ import annotations

import pytest

from common.settings import ServiceSettings, load_settings


def startup_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cls: type[ServiceSettings],
    env: dict[str, str],
) -> str:
    """Load ``cls`` with ``env`` set; assert it refuses to start (exit 2); return stderr."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as info:
        load_settings(cls, [])
    assert info.value.code == 2
    return capsys.readouterr().err
