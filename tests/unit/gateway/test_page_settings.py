"""PAGE_TOKEN_URL: a web URL or a path, never a script or another scheme."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings


@pytest.mark.parametrize(
    "url", ["https://idp.example/oauth/token", "http://127.0.0.1:9000/token", "/auth/token"]
)
def test_a_web_url_or_a_path_is_accepted(url: str) -> None:
    assert GatewaySettings(page_token_url=url).page_token_url == url


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:application/json,{}", "ftp://x/token", "//idp/token"]
)
def test_anything_else_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValidationError, match="PAGE_TOKEN_URL"):
        GatewaySettings(page_token_url=url)
