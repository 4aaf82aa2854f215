"""A switchable TCP forwarder for fault tests: put it between a client and a server.

``FaultProxy(host, port)`` listens on a free loopback port and forwards each connection to
the target. Its ``mode`` can be switched at any moment:

* ``"pass"``: bytes flow both ways (the default);
* ``"reset"``: every open connection is aborted (RST) and new ones are aborted on arrival,
  like a server or firewall that refuses;
* ``"blackhole"``: connections stay open but nothing flows either way and new ones are
  accepted and never answered, like a cable pulled out or a dropped route.

Switching back to ``"pass"`` heals new connections; connections that were black-holed stay
silent (their bytes are lost, as they would be), and reset ones are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Literal

Mode = Literal["pass", "reset", "blackhole"]


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # SO_LINGER 0: close sends RST instead of FIN.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self._blackholed: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the proxy first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client, upstream in list(self._pairs):
            _abort(client)
            if upstream is not None:
                _abort(upstream)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def set(self, mode: Mode) -> None:
        """Switch mode; ``reset`` aborts the open connections now, ``blackhole`` silences them."""
        self.mode = mode
        if mode == "pass":
            return
        for pair in list(self._pairs):
            client, upstream = pair
            if mode == "reset":
                _abort(client)
                if upstream is not None:
                    _abort(upstream)
                self._pairs.discard(pair)
            else:
                self._blackholed.add(id(client))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            _abort(writer)
            return
        if self.mode == "blackhole":
            pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
            self._pairs.add(pair)
            self._blackholed.add(id(writer))
            with contextlib.suppress(Exception):
                while await reader.read(65536):
                    pass
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, writer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await source.read(65536):
                if id(client) in self._blackholed:
                    continue  # swallowed: a black hole answers nothing
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if id(client) not in self._blackholed:
                with contextlib.suppress(Exception):
                    sink.close()
