"""Write or check docs/asyncapi.json and docs/openapi.json (run by scripts/gen-contract)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from gateway.app import Gateway
from gateway.http.contract import asyncapi_document, render
from gateway.settings import GatewaySettings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def documents() -> dict[Path, str]:
    gateway = Gateway(GatewaySettings())  # builds the app only: nothing connects
    return {
        DOCS / "asyncapi.json": render(asyncapi_document()),
        DOCS / "openapi.json": render(gateway.api.openapi()),
    }


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: scripts/gen-contract [--check]", file=sys.stderr)
        return 2
    drifted = 0
    for path, text in documents().items():
        old = path.read_text() if path.exists() else ""
        if old == text:
            continue
        if not check:
            path.write_text(text)
            print(f"gen-contract: wrote {path.relative_to(DOCS.parent)}")
            continue
        drifted += 1
        diff = difflib.unified_diff(
            old.splitlines(keepends=True), text.splitlines(keepends=True), str(path), "generated"
        )
        sys.stderr.writelines(list(diff)[:200])
    if drifted:
        print(
            f"gen-contract: {drifted} document(s) out of date: run scripts/gen-contract",
            file=sys.stderr,
        )
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
