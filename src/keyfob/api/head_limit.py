"""The 16 KiB limit on a request's line and headers (decision 33), inside the HTTP parser.

uvicorn's httptools protocol puts no bound on a request head: the parser keeps a header value
in memory until it ends, so one 50 MiB header is read whole before any ASGI code could look at
it (and the memory it took is not given back). uvicorn's ``h11_max_incomplete_event_size``
covers the h11 protocol only. ``HeadLimitedProtocol`` is the httptools protocol with a count
of the bytes of the head fed to the parser:

    head (line + headers) ─ up to HEAD_LIMIT bytes fed ─► on_headers_complete ─► the app
                          └ the head goes on past HEAD_LIMIT ─► 431 xError, connection closed

The bytes of a chunk beyond the limit are not fed at all. Body bytes are not counted here (the
body limit is ``api.limits``); the count starts again after each request of a kept-alive
connection. ``keyfob serve`` runs uvicorn with this protocol (``cli.main.server_config``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keyfob.api.errors import error_body
from keyfob.errors import ErrorCode

HEAD_LIMIT = 16 * 1024
"""Bytes of the request line and headers together, blank line included."""

log = logging.getLogger("keyfob.api")


def refusal() -> bytes:
    """The whole 431 answer, as the server writes it."""
    body = json.dumps(
        error_body(
            ErrorCode.HEADERS_TOO_LARGE,
            f"the request line and headers are larger than {HEAD_LIMIT} bytes",
        ),
        separators=(",", ":"),
    ).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (len(body), body)
    )


class HeadLimitedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a head longer than ``HEAD_LIMIT``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._heads = 0
        """Heads parsed so far on this connection."""

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = HEAD_LIMIT - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # The head must end within the bytes that still fit; the rest is fed only if it did.
        heads = self._heads
        super().data_received(data[:room])
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # refused by the parser, or upgraded to another protocol
        if self._heads == heads:
            self._refuse()
            return
        self.data_received(data[room:])

    def _refuse(self) -> None:
        client = "{}:{}".format(*self.client) if self.client else "a client"
        log.warning("%s sent a request head above %d bytes: 431", client, HEAD_LIMIT)
        self.transport.write(refusal())
        self.transport.close()
