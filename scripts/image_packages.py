"""What each image must carry: the packages its Dockerfile installs, their closure, the imports.

One source of truth for tests/deploy/test_images_and_lint.py (the Dockerfile's install list
equals the service's third-party imports) and scripts/verify-images (`pip list` inside the
built image equals the closure of that list).

    python scripts/image_packages.py expected Dockerfile.gateway   # the closure, one a line
    python scripts/image_packages.py check Dockerfile.gateway PIP_LIST.json [MARKERS.json]

The closure is read from the installed metadata of the interpreter that runs this (the
project's .venv): the images and the venv install the same versions from requirements.lock,
so their Requires-Dist agree. Markers are evaluated in the image's environment when given
(MARKERS.json: packaging's default_environment() printed inside the image): Debian's Python
3.11.2 there needs async-timeout (redis: python_full_version < "3.11.3"), a newer one does not.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCAL_PACKAGES = {"common", "gateway", "monitor", "notifier", "__future__"}
#: A venv's own installers: in every image, never a dependency of the services.
VENV_TOOLS = {"pip", "setuptools", "wheel"}
#: The service code each image copies (Dockerfile COPY lines).
SOURCES = {
    "gateway": ("gateway", "common"),
    "monitor": ("monitor", "common"),
    "notifier": ("notifier", "common"),
}


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def install_list(dockerfile: Path) -> list[str]:
    """The requirement strings of the `pip install --constraint ...` RUN of a Dockerfile."""
    text = dockerfile.read_text()
    match = re.search(r"^RUN \S*pip install --constraint \S+((?:.*\\\n)*.*)$", text, re.M)
    if match is None:
        raise ValueError(f"{dockerfile.name}: no 'RUN ... pip install --constraint' line")
    words = match.group(1).replace("\\\n", " ").split()
    return [w.strip('"') for w in words if re.match(r'^"?[A-Za-z]', w)]


def third_party_imports(service: str) -> set[str]:
    """Top-level modules imported by the service's code (and common), outside the stdlib."""
    names: set[str] = set()
    for folder in SOURCES[service]:
        for path in (ROOT / "services" / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names - LOCAL_PACKAGES if n not in sys.stdlib_module_names}


def import_owners(modules: set[str]) -> dict[str, set[str]]:
    """Each imported module -> the normalized distributions that provide it."""
    dists = packages_distributions()
    return {m: {normalize(d) for d in dists.get(m, [m])} for m in modules}


def closure(requirements: list[str], markers: Mapping[str, str] | None = None) -> set[str]:
    """Every distribution pip installs for these requirements (extras and markers honoured,
    markers evaluated in `markers`, default: this interpreter's environment)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    result: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (normalize(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        result.add(key[0])
        try:
            requires = distribution(req.name).requires or []
        except PackageNotFoundError as exc:
            raise SystemExit(f"{req.name} is not installed in {sys.prefix}") from exc
        for line in requires:
            dep = Requirement(line)
            extras = req.extras or {""}
            env = dict(markers or {})
            if dep.marker is None or any(dep.marker.evaluate({**env, "extra": e}) for e in extras):
                todo.append(Requirement(str(dep).split(";")[0]))
    return result


def expected(dockerfile: Path, markers: Mapping[str, str] | None = None) -> set[str]:
    return closure(install_list(dockerfile), markers)


def check(dockerfile: Path, pip_list_json: str, markers: Mapping[str, str] | None) -> list[str]:
    """Differences between `pip list --format json` of an image and the expected closure."""
    installed = {normalize(p["name"]) for p in json.loads(pip_list_json)} - VENV_TOOLS
    want = expected(dockerfile, markers)
    problems = [f"missing from the image: {name}" for name in sorted(want - installed)]
    problems += [f"in the image but not needed: {name}" for name in sorted(installed - want)]
    return problems


def main(argv: list[str]) -> int:
    usage_ok = {"expected": (2,), "check": (3, 4)}.get(argv[0] if argv else "", ())
    if len(argv) not in usage_ok:
        print(__doc__, file=sys.stderr)
        return 2
    dockerfile = Path(argv[1])
    if argv[0] == "expected":
        print("\n".join(sorted(expected(dockerfile))))
        return 0
    markers = json.loads(Path(argv[3]).read_text()) if len(argv) == 4 else None
    problems = check(dockerfile, Path(argv[2]).read_text(), markers)
    for problem in problems:
        print(f"{dockerfile.name}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
