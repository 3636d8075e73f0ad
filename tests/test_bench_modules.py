"""Every benchmark module imports: `make bench` imports them only when it runs, which the suite does not."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bench


@pytest.mark.parametrize("module", sorted(m.name for m in pkgutil.iter_modules(bench.__path__)))
def test_every_benchmark_module_imports(module: str) -> None:
    importlib.import_module(f"bench.{module}")


async def test_the_backfill_benchmark_backfills_its_file_whole(database_url: str) -> None:
    """Its run, not only its import: the file's ledgers from its first, every event stored (it raises
    otherwise)."""
    from bench import backfill
    from devnet import running_devnet

    class OneDatabase:  # the suite's database, in place of the benchmark's own server
        async def fresh_database(self) -> str:
            return database_url

        async def drop(self, url: str) -> None:
            pass

    first, ledgers, events = backfill._scan()
    assert (ledgers, events) == (30, backfill.EVENTS)
    with running_devnet() as devnet:
        seconds = await backfill._backfill(OneDatabase(), devnet.url, devnet.chain.passphrase, first)  # type: ignore[arg-type]
    assert seconds > 0
