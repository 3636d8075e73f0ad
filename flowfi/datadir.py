"""What `flowfi dev` keeps in the data folder (FLOWFI_DATA_DIR): the local network's chain (`devnet/`),
the embedded database (`postgres/`), the secret of its /v1 login tokens, and a lock that a running
`flowfi dev` holds on the folder, so that a second one, or `flowfi reset`, refuses to run on it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from flowfi.problems import Problem

LOCK = "dev.lock"
TOKEN_SECRET = "v1-token-secret"


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


def token_secret(data_dir: Path) -> str:
    """The secret `flowfi dev` signs /v1 login tokens with: made at its first run and kept in the data
    folder (readable by its owner only), so that a web app stays logged in across restarts."""
    path = data_dir / TOKEN_SECRET
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    secret = secrets.token_hex(32)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(secret + "\n")
    return secret
