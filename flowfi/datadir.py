"""What `flowfi dev` keeps in the data folder (FLOWFI_DATA_DIR): the local network's chain (`devnet/`),
the embedded database (`postgres/`), and a lock that a running `flowfi dev` holds on the folder, so that
a second one, or `flowfi reset`, refuses to run on it."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from flowfi.problems import Problem

LOCK = "dev.lock"


def chain_folder(data_dir: Path) -> Path:
    """Where `flowfi dev` saves the local network's chain."""
    return data_dir / "devnet"


@contextlib.contextmanager
def dev_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data folder for `flowfi dev` (the lock goes with the process, however it ends); Problem
    when another `flowfi dev` holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Problem(f"`flowfi dev` already runs on {data_dir}: use that one, or give this one another data "
                          "folder with FLOWFI_DATA_DIR") from None
        yield


def dev_running(data_dir: Path) -> bool:
    """Whether a `flowfi dev` runs on the data folder."""
    try:
        with open(data_dir / LOCK) as file:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except FileNotFoundError:
        return False  # `flowfi dev` never ran on it
    except BlockingIOError:
        return True
    return False
