"""uvicorn's httptools protocol with two limits it lacks: the size of a request's headers and the
time they may take to arrive.

uvicorn reads headers without a cap when it parses with httptools (h11's cap only applies to h11)
and waits forever for a client that sends a byte every few seconds, so a 200 MB header was read
whole and 200 slow clients held 200 connections. Here a request whose headers pass
``max_header_bytes`` gets 431 and its connection is closed; one whose headers are not all in
within ``header_timeout`` seconds of its first byte (or of the connection, before any byte) gets
408. A request's *body* is the application's to time (``--timeout`` covers it).

uvicorn takes the protocol class as its ``http`` setting: ``uvicorn.run(app, http=guarded(...))``.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class GuardedHttpTools(HttpToolsProtocol):
    """Headers bounded in bytes and in time; everything else is uvicorn's."""

    max_header_bytes = 64 << 10
    header_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.headers_pending = True  # until the first request's headers are complete
        self.header_bytes = 0
        self.header_timer: asyncio.TimerHandle | None = None
        self.arm()

    def arm(self) -> None:
        if self.header_timer is None:
            why = f"request headers not received within {self.header_timeout:g} s (--header-timeout)"
            self.header_timer = self.loop.call_later(self.header_timeout, self.refuse, 408, why)

    def disarm(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.headers_pending, self.header_bytes = True, 0
        self.arm()

    def on_headers_complete(self) -> None:
        self.headers_pending = False
        self.disarm()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted only while the headers are still incomplete after this chunk: a chunk that ends
        # them (and may carry the start of the body) is never held against them.
        if self.headers_pending and not self.transport.is_closing():
            self.header_bytes += len(data)
            if self.header_bytes > self.max_header_bytes:
                why = f"request headers over {self.max_header_bytes:,} bytes (--max-header-kb)"
                self.refuse(431, why)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def refuse(self, status: int, why: str) -> None:
        """Answer ``status`` with ``{"error": why}`` and close, whatever the parser has seen so far."""
        self.disarm()
        if self.transport.is_closing():
            return
        body = json.dumps({"error": why}).encode()
        head = (
            f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def guarded(max_header_bytes: int, header_timeout: float) -> type[GuardedHttpTools]:
    """The protocol class for uvicorn's ``http`` setting, with these two limits."""
    return type(
        "GuardedHttpTools",
        (GuardedHttpTools,),
        {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout},
    )
