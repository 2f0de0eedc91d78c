"""The gateway's settings reference cannot drift from the settings class."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import GatewaySettings

DOC = Path(__file__).resolve().parents[3] / "docs" / "gateway.md"


def test_every_gateway_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [n.upper() for n in GatewaySettings.model_fields if f"`{n.upper()}`" not in text]
    assert missing == []
