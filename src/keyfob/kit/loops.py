"""The event loop of every long-running process: uvloop when it is installed, asyncio's otherwise.

uvloop (libuv behind asyncio's interface, installed with ``uvicorn[standard]``) runs sockets,
timers and callbacks in C. In ``keyfob serve``'s profile at saturation the stock loop's selector,
transports and handles were about a tenth of the samples; the delivery child had run on uvloop
from the start. Short commands (migrations, checks) keep ``asyncio.run``: they do too little for
the loop to matter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop, uvloop's when available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)
