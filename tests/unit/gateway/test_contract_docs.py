"""The published contract: docs/asyncapi.json and docs/openapi.json are what the code
generates (scripts/gen-contract --check), the AsyncAPI document passes the official
AsyncAPI 3.0 JSON Schema (npm @asyncapi/specs, pinned in tests/js), it names every
Socket.IO event the gateway handles or sends, and API_DOCS is a validated setting."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT7

from common import constants
from gateway.app import Gateway
from gateway.http.contract import asyncapi_document
from gateway.settings import GatewaySettings
from tests.support.settings import startup_error

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "tests/js/node_modules/@asyncapi/specs/schemas/3.0.0.json"


def asyncapi_validator() -> jsonschema.Draft7Validator:
    assert SPEC.exists(), "run: (cd tests/js && npm ci)  # installs @asyncapi/specs"
    spec = json.loads(SPEC.read_text())
    # The bundled schema names each part by its own $id: register them for $ref.
    registry: Registry[Any] = Registry().with_resources(
        (uri, DRAFT7.create_resource(part)) for uri, part in spec["definitions"].items()
    )
    return jsonschema.Draft7Validator(spec, registry=registry)


def test_committed_documents_are_what_the_code_generates() -> None:
    run = subprocess.run(
        [str(ROOT / "scripts/gen-contract"), "--check"], check=False, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]


def test_asyncapi_document_passes_the_official_asyncapi_3_schema() -> None:
    validator = asyncapi_validator()
    document = json.loads((ROOT / "docs/asyncapi.json").read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)
    ]
    assert errors == []
    # The check has teeth: a wrong action or a broken payload schema is refused.
    broken = json.loads(json.dumps(document))
    broken["operations"]["relaySignals"]["action"] = "emit"
    broken["components"]["schemas"]["Signal"]["required"] = "type"
    assert len(list(validator.iter_errors(broken))) == 2


def test_every_socketio_event_is_in_the_document() -> None:
    document = asyncapi_document()
    names = {m["name"] for m in document["components"]["messages"].values()}
    events = {v for k, v in vars(constants).items() if k.endswith("_EVENT")}
    assert events <= names, events - names
    # Every handler the server registers (but the library's own) is a documented request.
    gateway = Gateway(GatewaySettings())
    handled = set(gateway.sio.handlers[constants.NAMESPACE]) - {"disconnect", "*"}
    received = {
        document["components"]["messages"][op["messages"][0]["$ref"].rsplit("/", 1)[1]]["name"]
        for op in document["operations"].values()
        if op["action"] == "receive" and op["channel"]["$ref"] == "#/channels/socketio"
    }
    assert handled == received


def test_payload_schemas_come_from_the_models() -> None:
    schemas = asyncapi_document()["components"]["schemas"]
    signal = schemas["Signal"]
    assert set(signal["required"]) == {"type", "price"}
    assert signal["additionalProperties"] is True  # unknown fields pass through
    assert schemas["FilterAck"]["additionalProperties"] is False
    assert schemas["RecoveryAnswer"]["properties"]["reason"]["anyOf"][0]["enum"] == [
        "trimmed",
        "epoch_changed",
        "epoch_unknown",
        "unavailable",
    ]


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"ENVIRONMENT": "development"}, True),
        ({"API_DOCS": "on"}, True),
        ({"ENVIRONMENT": "development", "API_DOCS": "off"}, False),
    ],
)
async def test_api_docs_default_off_in_production(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    monkeypatch.delenv("API_DOCS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()
    assert settings.docs_enabled is enabled
    # The FastAPI app itself (no lifespan, so no Redis): what each docs URL answers.
    transport = httpx.ASGITransport(app=Gateway(settings).api)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        for path in ("/docs", "/redoc", "/openapi.json", "/asyncapi.json"):
            assert (await http.get(path)).status_code == (200 if enabled else 404), path
        if enabled:
            served = (await http.get("/asyncapi.json")).json()
            assert served == json.loads((ROOT / "docs/asyncapi.json").read_text())


def test_api_docs_refuses_other_values(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = startup_error(monkeypatch, capsys, GatewaySettings, {"API_DOCS": "yes"})
    assert "API_DOCS" in err
