"""The import rules that keep the layout honest. Four rooms, and arrows that point one way:

    flowfi/   the composition root: the command line and `flowfi dev`; imports anything
    devnet/   the simulated chain (contract, ledgers, RPC server, traffic)
    api/      the server: listener, hub, SSE, REST
    indexer/  the worker: rpc, decode, store, worker; and the schema every room shares

The indexer never imports the API, the devnet or the root. The API and the devnet take from the
indexer only the shared schema: the events, the tables, the ids, the accrual formulas, the
networks, the addresses, how settings are read from the environment, and what an unavailable
database raises. The shared schema imports nothing else of the indexer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
ROOMS = ("flowfi", "devnet", "api", "indexer")
SHARED_SCHEMA = frozenset({"indexer.events", "indexer.tables", "indexer.ids", "indexer.accrual", "indexer.networks",
                           "indexer.addresses", "indexer.environment",
                           "indexer.unavailable"})
FORBIDDEN = {
    "indexer": {"api", "devnet", "flowfi"},
    "api": {"devnet", "flowfi"},
    "devnet": {"api", "flowfi"},
    "flowfi": set(),
}


def modules(room: str) -> list[Path]:
    return sorted((ROOT / room).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def indexer_modules(names: set[str]) -> set[str]:
    """The indexer modules among `names` (from indexer import x names indexer.x)."""
    found = {name for name in names if name.startswith("indexer.")}
    return {name for name in found if (ROOT / (name.replace(".", "/") + ".py")).exists()
            or (ROOT / name.replace(".", "/")).is_dir()}


@pytest.mark.parametrize("room", ROOMS)
def test_no_room_imports_a_room_it_must_not(room: str) -> None:
    for path in modules(room):
        tops = {name.split(".")[0] for name in imported(path)}
        assert not tops & FORBIDDEN[room], f"{path.relative_to(ROOT)} imports {sorted(tops & FORBIDDEN[room])}"


@pytest.mark.parametrize("room", ["api", "devnet"])
def test_the_api_and_the_devnet_take_only_the_shared_schema_from_the_indexer(room: str) -> None:
    for path in modules(room):
        beyond = indexer_modules(imported(path)) - SHARED_SCHEMA
        assert not beyond, f"{path.relative_to(ROOT)} imports {sorted(beyond)} from the indexer"


def test_the_shared_schema_stands_alone() -> None:
    for name in SHARED_SCHEMA:
        path = ROOT / (name.replace(".", "/") + ".py")
        beyond = indexer_modules(imported(path)) - SHARED_SCHEMA
        assert not beyond, f"{name} imports {sorted(beyond)}: the shared schema must not pull in the worker"
        assert not {n.split(".")[0] for n in imported(path)} & {"api", "devnet", "flowfi"}


def test_the_rules_see_every_import() -> None:
    """A guard on the checker itself: it finds, in the composition root, the imports it forbids elsewhere."""
    names = imported(ROOT / "flowfi/dev.py")
    assert {"api.app", "devnet", "indexer.worker"} <= names
    assert "indexer.worker" in indexer_modules(names)
