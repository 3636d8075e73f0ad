"""Many SSE connections in one process, over raw sockets, counting what arrives.

    python -m bench.sse_clients HOST PORT PATH CONNECTIONS BURST PAGE PAGES TIMEOUT

Opens CONNECTIONS `GET PATH` streams and prints {"ready": n} once every one has its response headers.
It then expects BURST events followed by PAGES pages of PAGE events on each connection, and records for
each connection the monotonic time (comparable across processes on Linux) at which the burst, then
each page, was complete. When every connection has all of them, or TIMEOUT seconds after the ready
line, it prints one JSON line: frames received, and those times.

Frames are counted by their `data:` lines, so the parser costs one bytes.count per chunk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench import raise_open_files

MARK = b"data:"


class Stream(asyncio.Protocol):
    __slots__ = ("request", "targets", "times", "count", "tail", "headers", "ready", "done", "transport")

    def __init__(self, request: bytes, targets: list[int], ready: asyncio.Future, done: asyncio.Future) -> None:
        self.request = request
        self.targets = targets
        self.times: list[float] = []
        self.count = 0
        self.tail = b""
        self.headers = False
        self.ready = ready
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.headers:
            head, sep, rest = data.partition(b"\r\n\r\n")
            if not sep:
                self.tail += data
                return
            self.headers = True
            if not self.ready.done():
                self.ready.set_result(head.split(b" ", 2)[1])
            data = rest
        chunk = self.tail + data
        found = chunk.count(MARK)
        self.tail = chunk[-4:]
        if found:
            self.count += found
            now = time.monotonic()
            targets = self.targets
            while len(self.times) < len(targets) and self.count >= targets[len(self.times)]:
                self.times.append(now)
            if len(self.times) == len(targets) and not self.done.done():
                self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the headers: {exc}"))
        if not self.done.done():
            self.done.set_result(None)


async def main(host: str, port: int, path: str, connections: int, burst: int, page: int, pages: int,
               limit_seconds: float) -> None:
    raise_open_files(connections + 1000)
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    targets = ([burst] if burst else []) + [burst + page * (k + 1) for k in range(pages)]
    streams: list[Stream] = []
    opening = asyncio.Semaphore(100)

    async def open_one() -> None:
        ready, done = loop.create_future(), loop.create_future()
        async with opening:
            for attempt in range(20):
                try:
                    _, stream = await loop.create_connection(lambda: Stream(request, targets, ready, done), host, port)
                    break
                except OSError:
                    await asyncio.sleep(0.05 * (attempt + 1))
            else:
                raise ConnectionError("cannot connect")
            status = await ready
            if status != b"200":
                raise ConnectionError(f"HTTP {status!r}")
        streams.append(stream)

    await asyncio.gather(*(open_one() for _ in range(connections)))
    print(json.dumps({"ready": len(streams)}), flush=True)
    await asyncio.wait([s.done for s in streams], timeout=limit_seconds)
    print(json.dumps({
        "frames": sum(s.count for s in streams),
        "complete": sum(len(s.times) == len(targets) for s in streams),
        "times": [s.times for s in streams],
    }), flush=True)
    for s in streams:
        s.transport.close()


if __name__ == "__main__":
    import uvloop

    host, port, path, *numbers = sys.argv[1:]
    n, burst, page, pages = (int(x) for x in numbers[:4])
    uvloop.run(main(host, int(port), path, n, burst, page, pages, float(numbers[4])))
