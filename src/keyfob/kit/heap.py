"""Python's cycle collector, told once a process has started that what it built is there to stay.

A keyfob process holds 100,000 to 190,000 objects once started: modules, SQLAlchemy's tables
and compiled statements, FastAPI's routes, the simulated fleet. Python's cycle collector
walked all of them at every full collection. Under load each process ran about ten full
collections a minute, a second of CPU in all, and each one stopped the process for
80 to 200 ms: the longest pauses a remote could meet on its way.

``settle`` is called once, when every role of the process has started: one full collection,
then ``gc.freeze()``, which moves every object still alive into a permanent generation that
the collector never walks again. Objects made afterwards are collected as before. At run time
keyfob makes almost no reference cycles (under load the collector found next to nothing to
free), so the youngest generation is also collected less often: ``YOUNG_THRESHOLD``
allocations between collections instead of 700.

What is frozen is never freed if it later becomes cyclic garbage. That is why only the
commands that start a long-running process call ``settle``, never ``create_app``: a test
session builds and drops many applications in one process.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Allocations (less deallocations) of tracked objects between two young collections."""


def settle(*, young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Collect once, freeze what survives, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
