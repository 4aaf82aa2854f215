"""``keyfob admin user|oauth-client|keys`` and ``vehicle link`` on a temporary SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keyfob.auth.clients import authenticate_client
from keyfob.auth.throttle import LoginThrottle
from keyfob.auth.users import sign_in
from keyfob.cli.main import app
from keyfob.store.engine import Database


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'admin.db'}"


def keyfob(db_url: str, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["admin", *args, "--db", db_url])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else result.output


@pytest.fixture
def fleet_vehicles(db_url: str) -> list[dict[str, str]]:
    keyfob(db_url, "partner", "add", "ops", "--name", "Ops")
    fleet = keyfob(db_url, "fleet", "add", "ops", "--name", "Cars")["fleetId"]
    return [
        keyfob(db_url, "vehicle", "add", fleet, "--motorization", kind)
        for kind in ("Electric", "Thermic")
    ]


def check(db_url: str, work: Any) -> Any:
    async def run() -> Any:
        database = Database(db_url)
        try:
            async with database.transaction() as conn:
                return await work(conn)
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_a_user_owns_vehicles_and_signs_in_with_the_printed_password(
    db_url: str, fleet_vehicles: list[dict[str, str]]
) -> None:
    electric, thermic = fleet_vehicles
    made = keyfob(
        db_url,
        "user",
        "add",
        "Ann@Example.com",
        "--first-name",
        "Ann",
        "--vehicle",
        electric["vin"].lower(),
    )
    assert made["login"] == "ann@example.com"
    assert made["vehicles"] == [{"id": electric["vid"], "vin": electric["vin"]}]
    linked = keyfob(db_url, "vehicle", "link", "ann@example.com", thermic["vid"])
    assert linked["linked"] is True
    assert keyfob(db_url, "vehicle", "link", "ann@example.com", thermic["vin"])["linked"] is False
    listed = keyfob(db_url, "user", "list")
    assert listed == [
        {
            "id": made["id"],
            "login": "ann@example.com",
            "firstName": "Ann",
            "lastName": None,
            "vehicles": [electric["vid"], thermic["vid"]],
        }
    ]
    assert "password" not in json.dumps(listed)
    user = check(
        db_url,
        lambda conn: sign_in(
            conn,
            login="ann@example.com",
            password=made["password"],
            address=None,
            throttle=LoginThrottle(per_account=5, per_address=5, window_s=60),
            now=0.0,
        ),
    )
    assert user.id == made["id"]


def test_refusals_exit_1_with_a_message(db_url: str, fleet_vehicles: list[dict[str, str]]) -> None:
    keyfob(db_url, "user", "add", "ann@example.com")
    assert "exists" in keyfob(db_url, "user", "add", "ANN@example.com", code=1)
    assert "no user" in keyfob(db_url, "vehicle", "link", "bob@example.com", "x", code=1)
    assert "no vehicle" in keyfob(
        db_url, "vehicle", "link", "ann@example.com", "VF3NOSUCHVIN000000", code=1
    )
    assert "e-mail" in keyfob(db_url, "user", "add", "not-an-address", code=1)


def test_an_oauth_client_secret_is_printed_once_and_works(db_url: str) -> None:
    made = keyfob(
        db_url,
        "oauth-client",
        "add",
        "My app",
        "--redirect-uri",
        "mymap://oauth2redirect/fr",
        "--redirect-uri",
        "http://127.0.0.1:8787/oauth/callback",
        "--first-party",
    )
    assert len(made["clientId"]) == 36
    assert made["realm"] == "clientsB2CPeugot/OTPPeugeot"
    assert made["redirectUris"] == [
        "mymap://oauth2redirect/fr",
        "http://127.0.0.1:8787/oauth/callback",
    ]
    assert "remote:door:write" in made["scopes"].split()
    assert made["firstParty"] is True
    client = check(
        db_url,
        lambda conn: authenticate_client(
            conn, client_id=made["clientId"], secret=made["clientSecret"]
        ),
    )
    assert client.first_party
    listed = keyfob(db_url, "oauth-client", "list")
    assert [c["clientId"] for c in listed] == [made["clientId"]]
    assert made["clientSecret"] not in json.dumps(listed)


def test_a_public_third_party_client_with_chosen_scopes(db_url: str) -> None:
    made = keyfob(
        db_url,
        "oauth-client",
        "add",
        "Horn app",
        "--public",
        "--realm",
        "clientsB2COpel",
        "--redirect-uri",
        "https://horn.example.com/cb",
        "--scope",
        "remote:horn:write",
        "--client-id",
        "horn-app",
    )
    assert made["clientSecret"] is None
    assert (made["clientId"], made["realm"], made["scopes"]) == (
        "horn-app",
        "clientsB2COpel/OTPOpel",
        "remote:horn:write",
    )


def test_clients_refuse_bad_realms_scopes_and_redirects(db_url: str) -> None:
    base = ["oauth-client", "add", "x", "--redirect-uri", "https://x.example.com/cb"]
    assert "no realm" in keyfob(db_url, *base, "--realm", "clientsB2CFiat", code=2)
    assert "unknown scopes" in keyfob(db_url, *base, "--scope", "remote:fly:write", code=1)
    bad = ["oauth-client", "add", "x", "--redirect-uri", "javascript:alert(1)"]
    assert "refused" in keyfob(db_url, *bad, code=1)
    bad = ["oauth-client", "add", "x", "--redirect-uri", "https://x.example.com/cb#frag"]
    assert "fragment" in keyfob(db_url, *bad, code=1)


def test_keys_rotate_publishes_the_new_key_first_and_keeps_the_old(db_url: str) -> None:
    first = keyfob(db_url, "keys", "rotate")
    second = keyfob(db_url, "keys", "rotate")
    assert second["published"] == [second["kid"], first["kid"]]
    assert keyfob(db_url, "keys", "list") == {"published": [second["kid"], first["kid"]]}
