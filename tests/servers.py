"""Finding the PostgreSQL servers that tests started and left running."""

from __future__ import annotations

from pathlib import Path

import psutil


def leftover_servers(under: Path) -> list[str]:
    """The running postgres servers whose data folder is under `under` (as named, or through a link, as a
    folder with a space is started): "pid N: folder" each."""
    root = str(under.resolve())
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] != "postgres" or "-D" not in cmdline:
            continue
        folder = cmdline[cmdline.index("-D") + 1] if cmdline.index("-D") + 1 < len(cmdline) else ""
        if folder and (folder.startswith(root) or str(Path(folder).resolve()).startswith(root)):
            found.append(f"pid {process.pid}: {folder}")
    return found
