"""The README's first walkthrough, pasted as written, ends Done/Success for both remotes.

A scratch folder outside the repository gets a ``.venv`` that is this interpreter's
environment, as a reader's checkout would have; ``keyfob serve --allow-private-webhooks`` and
``keyfob listen`` run there as the README starts them (on free ports: the demo credentials
carry serve's, and the receiver's port replaces 8787 in the pasted text), then the
walkthrough's shell blocks run in one bash, in order, as a reader pastes them (reading the
lock back once it is done, with the README's own wait).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serve_support import clean_env, free_port, serving

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Walkthrough: a remote and its notifications"
SERVE = ".venv/bin/keyfob serve --allow-private-webhooks"


def _blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


@contextmanager
def _listening(folder: Path, port: int) -> Iterator[Path]:
    out = folder / "listen.log"
    with out.open("wb") as log:
        process = subprocess.Popen(
            [".venv/bin/keyfob", "listen", "--port", str(port)],
            cwd=folder,
            env=clean_env(NO_COLOR="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "listening on" not in out.read_text():
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.1)
        yield out
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    return tmp_path


def test_the_readme_opens_with_the_commands_this_test_starts() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)\n", readme)
    assert first is not None
    assert first.group(1).endswith(f"&& {SERVE}")
    listen, *_ = _blocks()
    assert listen.strip() == ".venv/bin/keyfob listen"


def test_the_walkthrough_as_pasted_ends_done_success_for_both_remotes(scratch: Path) -> None:
    _, callback, remotes, read_back_block = _blocks()
    # The reader reads the remote back once the receiver shows it done: the README's own wait.
    (wait,) = [line for line in remotes.splitlines() if line.startswith("until ")]
    hook_port = free_port()
    pasted = "\n".join([callback, remotes, wait, read_back_block])
    script = "set -e\n" + pasted.replace("127.0.0.1:8787", f"127.0.0.1:{hook_port}")

    with _listening(scratch, hook_port) as printed, serving(scratch):
        ran = subprocess.run(
            ["bash", "-c", script + '\necho "UNLOCK_AND_LOCK $CB $RA"\n'],
            cwd=scratch,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr
        deadline = time.monotonic() + 30
        while printed.read_text().count("Done/") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = printed.read_text().splitlines()

    printed_json, _, marker = ran.stdout.rpartition("UNLOCK_AND_LOCK ")
    lock_id = marker.split()[1]
    read_back, _ = json.JSONDecoder().raw_decode(printed_json)  # the remote read back: the lock
    assert read_back["remoteActionId"] == lock_id
    assert (read_back["remote"], read_back["status"]) == ({"door": {"state": "Locked"}}, "Success")
    done = [line.split()[1:] for line in lines if "Done/" in line]
    assert len(done) == 2, lines
    (unlock_id, *_, unlock_end, _), (last_id, *_, lock_end, _) = done
    assert (unlock_end, last_id, lock_end) == ("Done/Success", lock_id, "Done/Success"), lines
    assert unlock_id != lock_id
