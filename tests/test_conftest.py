"""The suite's own guard: a session that leaves an embedded PostgreSQL server running fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from indexer import embedded
from tests.servers import leftover_servers

ROOT = Path(__file__).resolve().parent.parent

LEAKY_TEST = '''
from indexer import embedded


def test_that_leaks_its_server(tmp_path):
    pgdata = tmp_path / "pg"
    embedded.start(pgdata)
    embedded._held.pop(pgdata.resolve())  # forgotten, as a server restarted under its holder once was
'''


@pytest.mark.slow
def test_a_session_that_leaves_a_server_running_fails(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(LEAKY_TEST)
    basetemp = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "--noconftest",
         f"--basetemp={basetemp}", f"--rootdir={tmp_path}", "-c", "/dev/null", str(tmp_path / "test_leaky.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    left = leftover_servers(basetemp)
    for server in basetemp.rglob("postmaster.pid"):
        embedded.stop(server.parent)
    assert left, "the leaky test did leave its server"
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "PostgreSQL servers left running by the tests: pid " in result.stdout
