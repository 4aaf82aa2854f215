"""New ids: the contract's id pattern, unique, and in creation order across milliseconds."""

from __future__ import annotations

import threading
import time

from keyfob.kit.ids import is_valid_id, new_id, random_suffix
from keyfob.notifications.worker import WorkerOptions


def test_ids_are_32_lowercase_hex_digits_and_unique() -> None:
    made = [new_id() for _ in range(20_000)]
    assert all(len(i) == 32 and is_valid_id(i) and i == i.lower() for i in made)
    assert len(set(made)) == len(made)


def test_a_later_id_sorts_after_an_earlier_one() -> None:
    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_threads_draw_different_ids() -> None:
    made: list[list[str]] = [[], []]

    def draw(into: list[str]) -> None:
        into.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(made[0]) & set(made[1])
    assert len(set(made[0])) == 5_000


def test_names_made_at_the_same_moment_differ() -> None:
    """Lease owners and MQTT client ids of processes started together must not collide."""
    made = {random_suffix(8) for _ in range(1_000)}
    assert len(made) == 1_000
    assert all(len(name) == 8 and int(name, 16) >= 0 for name in made)
    assert len(random_suffix()) == 12


def test_two_delivery_workers_started_together_hold_leases_under_different_names() -> None:
    assert WorkerOptions().owner != WorkerOptions().owner
