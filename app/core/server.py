"""uvicorn's httptools protocol with the two limits it lacks: header bytes and header time.

uvicorn bounds headers only for its h11 protocol; with httptools a client can send headers
of any size (buffered whole before the app sees them) or never finish them (slowloris), so
each connection holds memory and a file descriptor for as long as the client likes. This
subclass counts the bytes of each request head and answers 431 past the limit, and closes a
connection whose request head is not complete within the header timeout.
HeaderLimitMiddleware then applies the exact per-header limits inside the app.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import get_settings

RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\ncontent-length: 32\r\nconnection: close\r\n\r\n"
    b"request header fields too large\n"
)
# The URL and line framing come on top of the headers the app limits.
HEAD_OVERHEAD = 8 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_head_bytes = settings.max_header_bytes + HEAD_OVERHEAD
        self.header_timeout = settings.server_header_timeout_seconds
        self.head_bytes = 0
        self.in_head = True
        self.head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_timer is None:
                self.head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
        super().data_received(data)
        if self.in_head and self.head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._cancel_head_timer()
            self.transport.write(RESPONSE_431)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True  # the next bytes on this connection start a new request head

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.in_head and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options() -> dict[str, Any]:
    """The limits `tenantry serve` passes to uvicorn (see the README's reverse-proxy notes)."""
    settings = get_settings()
    options: dict[str, Any] = {
        "timeout_keep_alive": settings.server_keep_alive_seconds,
        "limit_concurrency": settings.server_limit_concurrency,
        "backlog": settings.server_backlog,
        "h11_max_incomplete_event_size": settings.max_header_bytes + HEAD_OVERHEAD,
    }
    try:
        import httptools  # noqa: F401

        options["http"] = "app.core.server:BoundedHttpToolsProtocol"
    except ImportError:  # h11 then, bounded by h11_max_incomplete_event_size (no header timeout)
        options["http"] = "h11"
    return options
