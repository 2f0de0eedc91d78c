"""The README's curl example (Integrate section), run as written against a real gateway."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import ServiceFactory

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8000"
SECRET = "readme-example-secret-0123456789"


def readme_curl_block() -> str:
    section = README.read_text().split("\n### curl\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def json_documents(text: str) -> list[object]:
    """The JSON documents curl printed one after another (no newline between them)."""
    decoder, docs, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        doc, at = decoder.raw_decode(text, at)
        docs.append(doc)
        while at < len(text) and text[at].isspace():
            at += 1
    return docs


def test_the_readme_curl_example_runs_as_written(service_factory: ServiceFactory) -> None:
    gateway = service_factory("gateway", publish_tokens=f"readme:{SECRET}")
    block = readme_curl_block()
    assert README_URL in block, "the example names the default local gateway"
    # Only the address changes: the test's gateway listens on a free port.
    script = block.replace(README_URL, gateway.base_url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env={**os.environ, "QS_PUBLISH_TOKEN": SECRET},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    published, history = json_documents(result.stdout)
    (first,) = published["results"]
    assert first["id"] == "demo-1" and first["duplicate"] is False
    assert [s["offset"] for s in history["signals"] if s.get("id") == "demo-1"] == [first["offset"]]
