"""The role every long-running keyfob process starts last: its heap settled (``kit.heap``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from keyfob.kit import heap
from keyfob.runtime.context import AppContext


@asynccontextmanager
async def settled_heap(ctx: AppContext) -> AsyncIterator[None]:
    """Every other role has started: what the process holds now is there to stay."""
    if ctx.settings.settle_heap:
        heap.settle()
    yield
