"""A dispatcher's MQTT session name is stable: the same after a restart, unique on its host."""

from __future__ import annotations

import socket
from pathlib import Path

from keyfob.config import Settings
from keyfob.runtime.vehicle_role import dispatcher_id


def test_running_dispatchers_get_distinct_slots_and_a_restart_takes_its_slot_back(
    tmp_path: Path,
) -> None:
    settings = Settings(vehicles=0)
    host = socket.gethostname()
    with dispatcher_id(settings, tmp_path) as first, dispatcher_id(settings, tmp_path) as second:
        assert (first, second) == (f"{host}-0", f"{host}-1")
    with dispatcher_id(settings, tmp_path) as second:  # slot 0 was released by its holder
        assert second == f"{host}-0"
        with dispatcher_id(settings, tmp_path) as third:
            assert third == f"{host}-1"


def test_a_configured_dispatcher_id_is_used_as_it_is(tmp_path: Path) -> None:
    with dispatcher_id(Settings(vehicles=0, dispatcher_id="eu-west-1"), tmp_path) as name:
        assert name == "eu-west-1"
    assert list(tmp_path.iterdir()) == []
