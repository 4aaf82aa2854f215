"""``deploy/compose.yaml``, ``deploy/systemd/`` and the ``Dockerfile`` stay in step with the CLI,
the settings and ``deploy/mosquitto``.

Every keyfob command line they hold is parsed by the CLI's own parser (an unknown command or
option, a value of the wrong type or a missing required option fails), every ``KEYFOB_*``
variable they set is a setting or an option's variable, and every broker account they log in
with is one that ``deploy/mosquitto`` grants and tells how to create. Images are not built
here; the Dockerfile's few rules that matter are read from it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from typer.main import get_command

from keyfob.cli.main import app
from keyfob.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
KEYFOB = "/opt/keyfob/bin/keyfob"


def placeholders(text: str) -> str:
    """What the shell, compose or systemd would have put in: a word per variable, ``1`` per
    instance name."""
    text = re.sub(r"\$\{[^}]*\}", "x", text)
    return text.replace("%i", "1").replace("%H", "host")


def parse(args: list[str]) -> Any:
    """The CLI's parser on ``args`` (without ``keyfob``): the command's context, or the usage
    error the command line would print. (typer carries its own copy of click: its classes are
    told apart by what they do, not imported.)"""
    command: Any = get_command(app)
    ctx = command.make_context("keyfob", list(args))
    while hasattr(command, "resolve_command"):
        rest = [*ctx._protected_args, *ctx.args]
        name, found, rest = command.resolve_command(ctx, rest)
        assert found is not None, f"no command {name}"
        command = found
        ctx = command.make_context(name or "", rest, parent=ctx)
    return ctx


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def keyfob_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("image") == "keyfob:local"
    }


def compose_commands() -> dict[str, list[str]]:
    return {
        name: [placeholders(str(part)) for part in service["command"]]
        for name, service in keyfob_services().items()
    }


def unit_commands() -> dict[str, list[str]]:
    found = {}
    for unit in UNITS:
        for line in unit.read_text().splitlines():
            key, _, value = line.partition("=")
            if key in {"ExecStart", "ExecStartPre"} and value.startswith(KEYFOB):
                found[f"{unit.name} {key}"] = shlex.split(placeholders(value))[1:]
    return found


def option_variables(args: list[str] | None = None) -> set[str]:
    """The variables the options of the command ``args`` read (of every command without)."""
    names: set[str] = set()

    def walk(command: Any) -> None:
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                names.add(envvar)
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(get_command(app) if args is None else parse(args).command)
    return names


def is_setting(name: str) -> bool:
    parts = name.removeprefix("KEYFOB_").lower().split("__")
    fields: dict[str, Any] = Settings.model_fields
    for depth, part in enumerate(parts):
        field = fields.get(part)
        if field is None:
            return False
        if depth < len(parts) - 1:
            nested = field.annotation
            fields = getattr(nested, "model_fields", {})
    return True


def test_the_files_exist_and_hold_every_role() -> None:
    commands = compose_commands()
    roles = {args[0] for args in commands.values()}
    assert {"serve", "dispatcher", "worker", "sim", "db"} <= roles
    assert {args[0] for args in unit_commands().values()} >= {"serve", "dispatcher", "worker"}
    assert {"sim", "db"} <= {args[0] for args in unit_commands().values()}


@pytest.mark.parametrize(
    ("where", "args"),
    [*compose_commands().items(), *unit_commands().items()],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_command_is_one_the_cli_accepts(where: str, args: list[str]) -> None:
    try:
        parse(args)
    except Exception as exc:  # a usage error, whose message is the CLI's
        pytest.fail(f"{where}: keyfob {' '.join(args)}: {type(exc).__name__}: {exc}")


def test_the_parser_refuses_what_the_cli_refuses() -> None:
    """The check above has teeth: a misspelt option, a bad value, a missing one fail."""
    refused = {
        "NoSuchOption": ["worker", "--metric-port", "9100"],
        "BadParameter": ["worker", "--metrics-port", "x"],
        "MissingParameter": ["sim", "--db", "x"],
        "UsageError": ["dispatch"],
    }
    for error, args in refused.items():
        with pytest.raises(Exception) as caught:  # noqa: PT011 - told apart by name below
            parse(args)
        assert type(caught.value).__name__ == error, args


def test_every_keyfob_variable_is_a_setting_or_an_option_of_its_command() -> None:
    checked: list[tuple[str, str, set[str]]] = []  # where, variable, the command's variables
    commands = compose_commands()
    for name, service in keyfob_services().items():
        known = option_variables(commands[name])
        checked += [(f"compose {name}", key, known) for key in service.get("environment", {})]
    units = unit_commands()
    for unit in UNITS:
        known = option_variables(units[f"{unit.name} ExecStart"])
        for line in unit.read_text().splitlines():
            if line.startswith("Environment="):
                pairs = shlex.split(line.removeprefix("Environment="))
                checked += [(unit.name, pair.split("=", 1)[0], known) for pair in pairs]
    example = (DEPLOY / "systemd" / "keyfob.env.example").read_text()
    checked += [
        ("keyfob.env.example", line.split("=", 1)[0].lstrip("# "), option_variables())
        for line in example.splitlines()
        if re.match(r"#? ?KEYFOB_\w+=", line)
    ]
    assert len(checked) > 10
    unknown = [
        (where, name)
        for where, name, known in checked
        if name.startswith("KEYFOB_") and name not in known and not is_setting(name)
    ]
    assert not unknown


def acl_users() -> set[str]:
    acl = (DEPLOY / "mosquitto" / "acl").read_text()
    return set(re.findall(r"^user (\S+)$", acl, flags=re.MULTILINE))


def documented_accounts() -> set[str]:
    guide = (DEPLOY / "mosquitto" / "README.md").read_text()
    return set(re.findall(r"mosquitto_passwd\s+(?:-c\s+)?-b\s+\S+\s+(keyfob-\S+)", guide))


def broker_users(text: str) -> set[str]:
    return {
        urlsplit(url).username or ""
        for url in re.findall(r"mqtts?://[^\s\"']+", placeholders(text))
    }


def test_compose_logs_in_with_the_accounts_it_creates_and_the_acl_grants() -> None:
    services = compose()["services"]
    used = broker_users(COMPOSE.read_text())
    script = "\n".join(services["broker-accounts"]["command"])
    created = set(re.findall(r"mosquitto_passwd\s+(?:-c\s+)?-b\s+\S+\s+(\S+)", script))
    assert used == {"keyfob-platform", "keyfob-fleet-sim"}
    assert used == created
    assert used <= acl_users()
    assert used <= documented_accounts()


def test_systemd_logs_in_with_accounts_the_acl_grants() -> None:
    used = broker_users((DEPLOY / "systemd" / "keyfob.env.example").read_text())
    assert used == {"keyfob-platform", "keyfob-fleet-sim"}
    assert used <= acl_users()
    assert used <= documented_accounts()


def test_the_broker_runs_deploy_mosquittos_files_where_they_point() -> None:
    broker = compose()["services"]["broker"]
    sources = {}
    for volume in broker["volumes"]:
        source, target = volume.split(":")[:2]
        sources[target] = source
    config_target = broker["command"][-1]
    assert (DEPLOY / sources[config_target]) == DEPLOY / "mosquitto" / "mosquitto.conf"
    config = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    acl_file = re.search(r"^acl_file (\S+)$", config, flags=re.MULTILINE)
    assert acl_file is not None
    assert (DEPLOY / sources[acl_file.group(1)]) == DEPLOY / "mosquitto" / "acl"
    password_file = re.search(r"^password_file (\S+)$", config, flags=re.MULTILINE)
    assert password_file is not None
    accounts = compose()["services"]["broker-accounts"]
    assert password_file.group(1) in "\n".join(accounts["command"])


def test_the_dockerfile_builds_the_wheel_first_and_runs_unprivileged() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(stages) == 2
    build, runtime = lines[stages[0] : stages[1]], lines[stages[1] :]
    assert any("pip wheel" in line for line in build)
    assert not any(line.startswith("COPY src") for line in runtime), "no source tree at run time"
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users, "the runtime stage sets a user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert 'ENTRYPOINT ["keyfob"]' in runtime
    assert 'keyfob = "keyfob.cli.main:app"' in (ROOT / "pyproject.toml").read_text()
    command = next(line for line in runtime if line.startswith("CMD "))
    assert parse(re.findall(r'"(\w+)"', command))
