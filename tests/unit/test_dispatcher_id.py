"""A dispatcher's MQTT session name is stable: the same after a restart, unique on its host."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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


def test_slots_are_counted_per_broker(tmp_path: Path) -> None:
    """A dispatcher of another deployment (another broker) on the same host does not take the
    slot, and so the session, of one that is restarting."""
    ours = Settings(vehicles=0, mqtt="mqtt://platform:secret@broker-a:1883")
    theirs = Settings(vehicles=0, mqtt="mqtt://broker-b:1883")
    same_broker = Settings(vehicles=0, mqtt="mqtt://other-account@broker-a:1883")
    host = socket.gethostname()
    with dispatcher_id(theirs, tmp_path) as other:  # started while ours is down
        assert other == f"{host}-0"
        with dispatcher_id(ours, tmp_path) as restarted:
            assert restarted == f"{host}-0"
            with dispatcher_id(same_broker, tmp_path) as beside:
                assert beside == f"{host}-1"


def test_a_configured_dispatcher_id_is_used_as_it_is(tmp_path: Path) -> None:
    with dispatcher_id(Settings(vehicles=0, dispatcher_id="eu-west-1"), tmp_path) as name:
        assert name == "eu-west-1"
    assert list(tmp_path.iterdir()) == []


def test_the_slot_of_a_killed_dispatcher_goes_to_the_next_one_started(tmp_path: Path) -> None:
    """SIGKILL runs no clean-up: the system drops the dead process's lock, so a dispatcher
    restarted after a crash resumes the same MQTT session (its queued results)."""
    command = [sys.executable, "-c", HOLD_A_SLOT, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            held = holder.stdout.readline().strip()
            with dispatcher_id(Settings(vehicles=0), tmp_path) as beside:
                assert beside != held  # taken while the holder lives
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)
            with dispatcher_id(Settings(vehicles=0), tmp_path) as restarted:
                assert restarted == held == f"{socket.gethostname()}-0"
        finally:
            if holder.poll() is None:
                holder.kill()


HOLD_A_SLOT = """
import sys, time
from pathlib import Path
from keyfob.config import Settings
from keyfob.runtime.vehicle_role import dispatcher_id
with dispatcher_id(Settings(vehicles=0), Path(sys.argv[1])) as name:
    print(name, flush=True)
    time.sleep(60)
"""
