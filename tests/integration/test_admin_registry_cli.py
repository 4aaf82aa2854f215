"""``keyfob admin partner|fleet|vehicle list|remove`` and ``partner password``, on each engine.

Removal keeps history and refuses, with what is left and exit 1, while anything still
depends on the row; what belonged to a removed vehicle alone (its links to users) goes with it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import _empty_pg, run_in_thread
from keyfob.auth.service import CredentialCache, authenticate
from keyfob.cli.main import app
from keyfob.errors import KeyfobError
from keyfob.store.engine import Database


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'admin.db'}"
        return
    pg_url: str = request.getfixturevalue("pg_url")

    async def empty() -> None:
        database = Database(pg_url)
        try:
            await _empty_pg(database)
        finally:
            await database.dispose()

    run_in_thread(empty)
    yield pg_url


def admin(url: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["admin", *args, "--db", url])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else result.stderr.strip()


def test_fleets_and_vehicles_are_listed_whole_or_by_owner(url: str) -> None:
    admin(url, "partner", "add", "acme", "--name", "Acme")
    admin(url, "partner", "add", "zeta", "--name", "Zeta")
    cars = admin(url, "fleet", "add", "acme", "--name", "Cars")["fleetId"]
    vans = admin(url, "fleet", "add", "zeta", "--name", "Vans")["fleetId"]
    car = admin(url, "vehicle", "add", cars, "--motorization", "Electric")
    van = admin(url, "vehicle", "add", vans, "--motorization", "Thermic")

    fleets = admin(url, "fleet", "list")
    assert [(f["fleetId"], f["partner"], f["vehicles"]) for f in fleets] == [
        (cars, "acme", 1),
        (vans, "zeta", 1),
    ]
    assert [f["fleetId"] for f in admin(url, "fleet", "list", "--partner", "zeta")] == [vans]
    vehicles = admin(url, "vehicle", "list")
    assert [(v["vid"], v["vin"], v["fleetId"]) for v in vehicles] == [
        (car["vid"], car["vin"], cars),
        (van["vid"], van["vin"], vans),
    ]
    assert [v["vid"] for v in admin(url, "vehicle", "list", "--fleet", cars)] == [car["vid"]]


def test_removal_refuses_while_something_depends_then_goes_in_order(url: str) -> None:
    admin(url, "partner", "add", "acme", "--name", "Acme")
    fleet = admin(url, "fleet", "add", "acme", "--name", "Cars")["fleetId"]
    vehicle = admin(url, "vehicle", "add", fleet, "--motorization", "Hybrid")
    admin(url, "user", "add", "ann@example.com", "--vehicle", vehicle["vin"])

    refused = admin(url, "partner", "remove", "acme", code=1)
    assert refused == "error: partner acme still has 1 fleet: remove its fleets first"
    refused = admin(url, "fleet", "remove", fleet, code=1)
    assert refused == (
        f"error: fleet {fleet} still has 1 vehicle: remove its vehicles and callbacks first"
    )
    assert len(admin(url, "vehicle", "list")) == 1

    assert admin(url, "vehicle", "remove", vehicle["vin"].lower())["vid"] == vehicle["vid"]
    assert admin(url, "user", "list")[0]["vehicles"] == []
    assert admin(url, "fleet", "remove", fleet) == {"removed": "fleet", "fleetId": fleet}
    assert admin(url, "partner", "remove", "acme")["login"] == "acme"
    assert admin(url, "partner", "list") == []
    assert admin(url, "fleet", "list") == []
    assert admin(url, "vehicle", "remove", vehicle["vid"], code=1) == (
        f"error: no vehicle has the id or VIN {vehicle['vid']!r}"
    )


def test_a_partner_password_reset_replaces_the_old_password(url: str) -> None:
    made = admin(url, "partner", "add", "acme", "--name", "Acme", "--password", "old-one-12345")
    reset = admin(url, "partner", "password", "acme")
    assert reset["login"] == "acme"
    assert len(reset["password"]) >= 16
    assert admin(url, "partner", "password", "nobody", code=1).startswith("error: no partner")

    async def sign_in(password: str) -> bool:
        database = Database(url)
        try:
            async with database.read() as conn:
                await authenticate(
                    conn,
                    login="acme",
                    password=password,
                    client_id=made["clientId"],
                    cache=CredentialCache(),
                )
                return True
        except KeyfobError:
            return False
        finally:
            await database.dispose()

    assert asyncio.run(sign_in(reset["password"])) is True
    assert asyncio.run(sign_in("old-one-12345")) is False
