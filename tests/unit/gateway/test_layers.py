"""The gateway's package shows its layers: no import cycles, nothing reaches upward, and
only ``gateway.wire`` touches the private side of python-socketio, python-engineio,
uvicorn, websockets and uvloop."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3] / "services"
GATEWAY = ROOT / "gateway"

#: Lower numbers are lower layers; a module may import its own layer or a lower one.
LAYERS: dict[str, int] = {
    "common": 0,
    "gateway.clients.auth": 1,  # token verification: a leaf the settings build on
    "gateway.settings": 2,
    "gateway.metrics": 2,
    "gateway.wire": 3,
    "gateway.edge": 4,
    "gateway.delivery": 4,
    "gateway.clients": 5,
    "gateway.http": 5,
    "gateway.app": 6,
    "gateway.__main__": 7,
}
#: Libraries whose private details live in ``gateway.wire`` only (modules or prefixes).
INTERNAL_MODULES = ("engineio", "websockets", "uvicorn.protocols", "socketio.packet")
#: Attributes that reach into python-socketio/engineio objects.
INTERNAL_ATTRIBUTES = frozenset({"eio", "sockets", "_async", "packet_class"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def gateway_modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for p in sorted(GATEWAY.rglob("*.py"))}


def imports(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from engineio import packet` names a submodule: count it as one.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def layer(module: str) -> int | None:
    matches = [key for key in LAYERS if module == key or module.startswith(key + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def test_every_gateway_module_has_a_layer() -> None:
    missing = [m for m in gateway_modules() if m != "gateway" and layer(m) is None]
    assert missing == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = []
    for module, tree in gateway_modules().items():
        own = layer(module)
        for target in imports(tree):
            theirs = layer(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_the_import_graph_has_no_cycles() -> None:
    modules = gateway_modules()
    graph = {
        m: {t for t in imports(tree) if t in modules and t != m} for m, tree in modules.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_only_the_wire_package_touches_library_internals() -> None:
    offenders = []
    for module, tree in gateway_modules().items():
        if module.startswith("gateway.wire"):
            continue
        for target in imports(tree):
            if any(target == m or target.startswith(m + ".") for m in INTERNAL_MODULES):
                offenders.append(f"{module} imports {target}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in INTERNAL_ATTRIBUTES:
                offenders.append(f"{module}:{node.lineno} reads .{node.attr}")
    assert offenders == []


def test_the_checks_catch_what_they_look_for() -> None:
    """The rules above must be able to fail: feed them a module that breaks each."""
    bad = ast.parse("from engineio import packet\nimport gateway.app\nx = sio.eio.sockets\n")
    assert "engineio.packet" in set(imports(bad))
    assert layer("gateway.app") == 6 and layer("gateway.wire.direct") == 3
    attrs = {n.attr for n in ast.walk(bad) if isinstance(n, ast.Attribute)}
    assert attrs & INTERNAL_ATTRIBUTES == {"eio", "sockets"}
