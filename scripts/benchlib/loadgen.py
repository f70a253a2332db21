"""Built-in load generator and probe client: raw asyncio HTTP/1.1 over keep-alive connections.

Used when wrk is not installed, for the pre-flight checks and for the scale mode's single
client. Deliberately minimal (no httpx): each request is prebuilt bytes plus one header parse,
so the generator costs far less CPU than the servers it measures.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

RequestFactory = Callable[[], bytes]


def build_request(method: str, path: str, port: int, headers: dict[str, str] | None = None,
                  body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(status, raw header block, body). Content-Length and chunked bodies; none for 204/304."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    start = lower.find(b"\r\ncontent-length:")
    if start >= 0:
        end = lower.index(b"\r\n", start + 2)
        body = await reader.readexactly(int(lower[start + 17:end]))
    elif b"transfer-encoding: chunked" in lower:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunks.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(c[:-2] for c in chunks)
    else:
        body = b""
    return status, head, body


class Client:
    """One keep-alive connection for sequential requests (probes, the scale mode)."""

    def __init__(self, port: int):
        self.port = port
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes | None = None, timeout: float = 30.0) -> tuple[int, bytes, bytes]:
        return await self.send(build_request(method, path, self.port, headers, body), timeout)

    async def send(self, raw: bytes, timeout: float = 30.0) -> tuple[int, bytes, bytes]:
        reused = self._conn is not None
        try:
            return await self._send(raw, timeout)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not reused:
                raise
            # The server closed the idle keep-alive connection (uvicorn: after 5 s): retry once.
            return await self._send(raw, timeout)

    async def _send(self, raw: bytes, timeout: float) -> tuple[int, bytes, bytes]:
        if self._conn is None:
            self._conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._conn
        writer.write(raw)
        try:
            status, head, body = await asyncio.wait_for(read_response(reader), timeout)
        except BaseException:
            await self.close()
            raise
        if b"\r\nconnection: close" in head.lower():
            await self.close()
        return status, head, body

    async def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None


@dataclass
class LoadResult:
    duration: float
    latencies: list[float] = field(default_factory=list)  # seconds, successful or not
    statuses: Counter = field(default_factory=Counter)
    socket_errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        bad = sum(n for status, n in self.statuses.items() if status >= 400)
        return bad + self.socket_errors

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        return {
            "requests": self.requests,
            "rps": self.requests / self.duration if self.duration else 0.0,
            "p50_ms": percentile(lat, 50) * 1000,
            "p90_ms": percentile(lat, 90) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
            "max_ms": (lat[-1] if lat else 0.0) * 1000,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil
    return sorted_values[int(rank) - 1]


@dataclass
class LoadSpec:
    make: RequestFactory
    connections: int


async def _worker(port: int, make: RequestFactory, result: LoadResult, measure_from: float, stop_at: float) -> None:
    perf = time.perf_counter
    reader = writer = None
    while perf() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            raw = make()
            started = perf()
            writer.write(raw)
            status, head, _ = await read_response(reader)
            ended = perf()
            if measure_from <= ended <= stop_at:  # completions in the window: unbiased req/s
                result.latencies.append(ended - started)
                result.statuses[status] += 1
            if b"\r\nconnection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            if perf() >= measure_from:
                result.socket_errors += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


async def run_load(port: int, specs: list[LoadSpec], duration: float, warmup: float,
                   grace: float = 10.0) -> list[LoadResult]:
    """Drive every spec at once for warmup + duration; responses completed in the last
    `duration` seconds count. Requests still in flight then are cancelled after `grace` seconds.
    """
    loop_start = time.perf_counter()
    measure_from, stop_at = loop_start + warmup, loop_start + warmup + duration
    results = [LoadResult(duration) for _ in specs]
    tasks = [
        asyncio.create_task(_worker(port, spec.make, result, measure_from, stop_at))
        for spec, result in zip(specs, results)
        for _ in range(spec.connections)
    ]
    done, pending = await asyncio.wait(tasks, timeout=warmup + duration + grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            raise task.exception()
    return results
