"""Notification ids keep the order they were made in, also within one millisecond.

The event streams read a callback's notifications in id order, and a remote's events are often
recorded in the same millisecond (CheckingVehicle, SentToVehicle): their ids must not come out
in a random order there, as ids with a random tail would.
"""

from __future__ import annotations

from keyfob.kit.ids import is_valid_id, new_ordered_id


def test_ids_made_one_after_another_sort_in_that_order() -> None:
    made = [new_ordered_id() for _ in range(20_000)]  # thousands per millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(len(found) == 32 and is_valid_id(found) for found in made)
