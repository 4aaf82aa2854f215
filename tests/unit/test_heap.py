"""A started process settles its heap: the cycle collector stops walking what stays, and still
frees what the process makes afterwards.

``settle`` runs in a fresh interpreter: frozen objects stay frozen for the life of a process,
which must not be this test session.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Any, cast

import pytest

from keyfob.config import Settings
from keyfob.kit import heap
from keyfob.runtime.context import AppContext
from keyfob.runtime.settle import settled_heap

_PROBE = """
import gc, json
from keyfob.kit import heap

class Node:
    def __init__(self):
        self.me = self

kept = [Node() for _ in range(1000)]   # built at start, kept for good
before = len(gc.get_objects())
heap.settle()
frozen = gc.get_freeze_count()
walked = len(gc.get_objects())          # what the collector still walks

for _ in range(500):                    # cycles made at run time, dropped at once
    Node()
freed = gc.collect()
print(json.dumps({
    "before": before, "frozen": frozen, "walked": walked, "freed": freed,
    "threshold": list(gc.get_threshold()), "kept": len(kept),
}))
"""


def test_settle_freezes_what_the_process_holds_and_still_frees_new_cycles() -> None:
    found = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    seen: dict[str, Any] = json.loads(found.stdout)
    assert seen["frozen"] >= seen["before"] - 100  # all but the few the collection freed
    assert seen["walked"] < 100
    assert seen["freed"] >= 500  # every dropped Node (and its __dict__ where it has one)
    assert seen["threshold"][0] == heap.YOUNG_THRESHOLD


@pytest.mark.parametrize("wanted", [True, False])
def test_the_last_role_settles_the_heap_only_when_the_settings_say_so(
    wanted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(heap, "settle", lambda: calls.append("settled"))
    ctx = cast(AppContext, SimpleNamespace(settings=Settings(vehicles=0, settle_heap=wanted)))

    async def enter() -> None:
        async with settled_heap(ctx):
            pass

    asyncio.run(enter())
    assert calls == (["settled"] if wanted else [])
