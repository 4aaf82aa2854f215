"""The README's scaled-out commands log in to the broker with the accounts that
``deploy/mosquitto`` creates and grants: a reader who follows both gets a working broker."""

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


def _acl_users() -> set[str]:
    acl = (DEPLOY / "acl").read_text()
    return set(re.findall(r"^user (\S+)$", acl, flags=re.MULTILINE))


def _password_file_users() -> set[str]:
    guide = (DEPLOY / "README.md").read_text()
    return set(re.findall(r"mosquitto_passwd\s+(?:-c\s+)?-b\s+\S+\s+(keyfob-\S+)", guide))


def test_the_platform_commands_use_the_platform_account() -> None:
    users = {c.split()[1]: _broker_user(c) for c in _scaled_out_commands() if "--mqtt" in c}

    assert set(users) == {"serve", "dispatcher", "sim"}
    assert users["serve"] == users["dispatcher"] == "keyfob-platform"
    assert users["sim"] == "keyfob-sms"


def test_every_account_the_readme_uses_is_granted_and_created_by_deploy() -> None:
    used = {_broker_user(c) for c in _scaled_out_commands() if "--mqtt" in c}

    assert used <= _acl_users()
    assert used <= _password_file_users()
