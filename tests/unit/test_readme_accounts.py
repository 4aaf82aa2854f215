"""The README's scaled-out commands log in to the broker with the accounts that
``deploy/mosquitto`` creates and grants what each command needs: a reader who follows both
gets a working broker. ``keyfob sim`` logs every vehicle it simulates in with its own account,
so that account must speak for every vehicle and hear the wake-ups."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "mosquitto"


def _scaled_out_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running it scaled out", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None, "the scaled-out section has a sh block"
    return [line for line in block.group(1).splitlines() if line.startswith("keyfob ")]


def _broker_user(command: str) -> str:
    url = re.search(r"--mqtt (\S+)", command)
    assert url is not None, command
    user = urlsplit(url.group(1)).username
    assert user, command
    return user


def _grants() -> dict[str, set[tuple[str, str]]]:
    """``{user: {(access, topic), ...}}`` from the ACL's ``user`` and ``topic`` lines."""
    grants: dict[str, set[tuple[str, str]]] = {}
    user = None
    for line in (DEPLOY / "acl").read_text().splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
            grants[user] = set()
        elif words[:1] == ["topic"] and user is not None:
            grants[user].add((words[1], words[2]))
    return grants


def _password_file_users() -> set[str]:
    guide = (DEPLOY / "README.md").read_text()
    return set(re.findall(r"mosquitto_passwd\s+(?:-c\s+)?-b\s+\S+\s+(keyfob-\S+)", guide))


def test_each_command_uses_an_account_granted_what_it_needs() -> None:
    users = {c.split()[1]: _broker_user(c) for c in _scaled_out_commands() if "--mqtt" in c}

    assert set(users) == {"serve", "dispatcher", "sim"}
    grants = _grants()
    assert ("readwrite", "keyfob/v1/#") in grants[users["serve"]]
    assert users["dispatcher"] == users["serve"]
    assert {("readwrite", "keyfob/v1/vehicles/#"), ("read", "keyfob/v1/wakeup/#")} <= grants[
        users["sim"]
    ]


def test_every_account_the_readme_uses_is_created_by_deploy() -> None:
    used = {_broker_user(c) for c in _scaled_out_commands() if "--mqtt" in c}

    assert used <= _password_file_users()
