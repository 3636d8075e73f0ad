"""Every third-party module the code imports is declared in pyproject.toml, in the right place: the
packages' own in the dependencies (the embedded server's in the `embedded` extra), the benchmarks' in
the `bench` extra (`make bench` from a fresh clone once failed on sse_starlette), the tests' in `test`."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OWN = {"flowfi", "indexer", "api", "devnet", "migrations", "bench", "tests"}
DISTRIBUTIONS = importlib.metadata.packages_distributions()


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def declared(*extras: str) -> set[str]:
    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    found = names(requirements)
    # what a declared package brings along: its own requirements, and those of the extras asked for
    # (uvicorn[standard]: uvloop, httptools; pyjwt[crypto]: cryptography)
    for requirement in requirements:
        name = next(iter(names([requirement])))
        wanted = set(re.findall(r"\w+", requirement.partition("[")[2].partition("]")[0]))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # an extra not installed here (bench)
            requires = []
        for needed in requires:
            marker = re.search(r"extra == [\"'](\w+)[\"']", needed)
            if marker is None or marker.group(1) in wanted:
                found |= names([needed])
    return found


def imported(folder: str) -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in OWN and m not in sys.stdlib_module_names and m != "__future__"}


@pytest.mark.parametrize(("folders", "extras"), [
    (("flowfi", "api", "devnet", "migrations"), ()),
    (("indexer",), ("embedded",)),
    (("bench",), ("embedded", "bench")),
    (("tests",), ("embedded", "test")),
])
def test_every_import_is_a_declared_dependency(folders: tuple[str, ...], extras: tuple[str, ...]) -> None:
    allowed = declared(*extras)
    for folder in folders:
        for module in sorted(imported(folder)):
            distributions = {d.lower().replace("_", "-") for d in DISTRIBUTIONS.get(module, [module])}
            assert distributions & allowed, f"{folder}/ imports {module} ({distributions}), not declared for it"
