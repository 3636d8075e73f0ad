"""The API's server (api.gate.GatedServer) around an app that answers every request "ok", in a process of
its own, so that a test may starve it of file descriptors without starving itself.

    python -m tests.gate_server SETTINGS_JSON [--leave N]

SETTINGS_JSON: ApiSettings fields as JSON. With --leave N, once listening, the process opens /dev/null
until it is out of descriptors, then closes N of them: other files have taken the rest, and accept()
fails once N connections are open. Prints its port on stdout once listening; logs on stderr as `flowfi
serve` does; stops when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any

import uvicorn

from api.gate import GatedServer
from api.settings import ApiSettings
from flowfi.logs import setup_logging


class OkApp:
    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


def eat_descriptors(leave: int) -> list[int]:
    eaten: list[int] = []
    with contextlib.suppress(OSError):
        while True:
            eaten.append(os.open(os.devnull, os.O_RDONLY))
    for _ in range(min(leave, len(eaten))):
        os.close(eaten.pop())
    return eaten


async def main(settings: ApiSettings, leave: int | None) -> None:
    config = uvicorn.Config(OkApp(settings), host="127.0.0.1", port=0, lifespan="off", log_config=None,
                            timeout_graceful_shutdown=1)
    server = GatedServer(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sock.getsockname()[1]  # type: ignore[attr-defined]
    eaten = eat_descriptors(leave) if leave is not None else []
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for fd in eaten:
        os.close(fd)
    server.should_exit = True
    await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("settings")
    parser.add_argument("--leave", type=int)
    args = parser.parse_args()
    setup_logging()
    asyncio.run(main(ApiSettings(**json.loads(args.settings)), args.leave))
