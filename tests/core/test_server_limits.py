"""The HTTP server's own limits (issue #12, items 7 and 8): a real uvicorn with the bounded
httptools protocol on 127.0.0.1 (port 0), spoken to over raw sockets.

Huge request heads get 431 and a closed connection before they are buffered whole; a head
that never completes is closed after the header timeout (the server's timer, bounded here
by wait_for — no sleeps, no durations asserted).
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager

import pytest

from app.core.config import get_settings

pytest.importorskip("httptools", reason="the bounded protocol subclasses uvicorn's httptools protocol")
uvicorn = pytest.importorskip("uvicorn")


async def hello(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def bounded_server(monkeypatch):
    monkeypatch.setenv("SERVER_HEADER_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(hello, http="app.core.server:BoundedHttpToolsProtocol", lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():  # start-up failed: show why instead of waiting forever
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)  # waiting for start-up, not timing anything
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()
        get_settings.cache_clear()


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=15)  # until the server closes
    except (ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        writer.close()


async def test_an_ordinary_request_is_served(monkeypatch):
    async with bounded_server(monkeypatch) as port:
        answer = await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")


async def test_a_huge_request_head_gets_431_and_a_closed_connection(monkeypatch):
    answer = b""
    async with bounded_server(monkeypatch) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(64):  # up to 4 MiB; the server must refuse long before
                writer.write(b"a" * 65536)
                await asyncio.wait_for(writer.drain(), timeout=10)
            answer = await asyncio.wait_for(reader.read(), timeout=15)
        except ConnectionError:  # the server closed while we were still sending: refused
            answer = await _rest(reader)
        finally:
            writer.close()
    # Either the 431 arrived before the close, or the close cut our upload short.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:80]


async def _rest(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), timeout=15)
    except ConnectionError:
        return b""


async def test_a_head_that_never_completes_is_closed(monkeypatch):
    async with bounded_server(monkeypatch) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=15)  # TimeoutError: never closed
        writer.close()
    assert answer == b""
