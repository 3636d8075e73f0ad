"""Every benchmark module imports: `make bench` imports them only when it runs, which the suite does not."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bench


@pytest.mark.parametrize("module", sorted(m.name for m in pkgutil.iter_modules(bench.__path__)))
def test_every_benchmark_module_imports(module: str) -> None:
    importlib.import_module(f"bench.{module}")
