"""Fault tests' links: a proxy that can also slow a link down, and URLs routed through one.

``FaultProxy`` (``tests/faultproxy.py``) resets or black-holes a TCP link; a slow broker is a
third kind of trouble, where every byte arrives but late. ``behind`` rewrites a broker or
database URL so that a process reaches it through a proxy.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from faultproxy import FaultProxy


class FaultProxyWithLatency(FaultProxy):
    """``FaultProxy`` plus latency: while ``delay`` is positive each chunk waits that long
    (in order, as on a slow link; the delays of one burst overlap)."""

    delay = 0.0

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, client: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        late = loop.create_task(super()._pump(_Delayed(queue), sink, client))  # type: ignore[arg-type]
        try:
            while data := await source.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            queue.put_nowait((0.0, b""))
            await asyncio.shield(late)


class _Delayed:
    """A reader for ``FaultProxy._pump`` that hands out each chunk once it is due."""

    def __init__(self, queue: asyncio.Queue[tuple[float, bytes]]) -> None:
        self.queue = queue

    async def read(self, _: int) -> bytes:
        due, data = await self.queue.get()
        await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        return data


def behind(url: str, proxy: FaultProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (credentials + "@" if credentials else "") + f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))
