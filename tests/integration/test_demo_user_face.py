"""The embedded default's demo on an empty database: an end user and their app, ready to use.

The credentials file gets ``user`` and ``oauthClient`` besides the fleet face's keys, and
``keyfob env`` exports them; the password and the client secret in it work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from conftest import make_settings
from keyfob.api.app import create_app
from keyfob.auth.clients import authenticate_client
from keyfob.auth.throttle import LoginThrottle
from keyfob.auth.users import sign_in, vehicle_ids_of
from keyfob.cli.main import app as cli
from keyfob.kit.clock import FakeClock
from keyfob.store.engine import Database


async def provision(db: Database, clock: FakeClock, folder: Path) -> tuple[Any, dict[str, Any]]:
    path = folder / "demo.json"
    application = create_app(
        make_settings(db.url, vehicles=5, credentials_file=path),
        database=db,
        clock=clock,
        announce=lambda _: None,
    )
    async with application.router.lifespan_context(application):
        pass
    return application.state.ctx, json.loads(path.read_text())


async def test_the_demo_user_owns_half_the_cars_and_signs_in(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    ctx, demo = await provision(db, clock, tmp_path)
    fleet_vins = [v["vin"] for v in demo["vehicles"]]
    assert demo["baseUrl"] == "https://keyfob.test/connectedcar/v3"
    assert demo["userBaseUrl"] == "https://keyfob.test/connectedcar/v4"
    assert demo["oauthBaseUrl"] == "https://keyfob.test/am/oauth2"
    owned = demo["user"]["vehicles"]
    assert [v["vin"] for v in owned] == fleet_vins[:3]
    client = demo["oauthClient"]
    assert client["redirectUri"] == "http://127.0.0.1:8787/oauth/callback"
    assert client["realm"] == "clientsB2CPeugeot"
    assert client["scopes"] == ["openid", "profile"]
    async with db.read() as conn:
        user = await sign_in(
            conn,
            login=demo["user"]["login"],
            password=demo["user"]["password"],
            address=None,
            throttle=LoginThrottle(per_account=1, per_address=1, window_s=1),
            now=0.0,
        )
        assert await vehicle_ids_of(conn, user.id) == [v["id"] for v in owned]
        app = await authenticate_client(
            conn, client_id=client["clientId"], secret=client["clientSecret"]
        )
    assert app.first_party
    assert set(app.redirect_uris) == {client["redirectUri"], "mymap://oauth2redirect/fr"}
    assert app.realm == "clientsB2CPeugot/OTPPeugeot"
    async with db.read() as conn:
        jwks = await ctx.user_auth.keys.jwks(conn, now=clock())
    assert len(jwks["keys"]) == 1, "start-up makes the first signing key"


async def test_keyfob_env_exports_both_faces(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    _, demo = await provision(db, clock, tmp_path)
    result = CliRunner().invoke(cli, ["env", "--credentials-file", str(tmp_path / "demo.json")])
    assert result.exit_code == 0, result.output
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in result.output.splitlines()
    )
    assert exports["KF_API4"] == "https://keyfob.test/connectedcar/v4"
    assert exports["KF_OAUTH"] == "https://keyfob.test/am/oauth2"
    assert exports["KF_USER"] == demo["user"]["login"]
    assert exports["KF_OAUTH_CLIENT"] == demo["oauthClient"]["clientId"]
    assert exports["KF_REALM"] == "clientsB2CPeugeot"
    assert exports["KF_SCOPE"] == "'openid profile'"
    assert exports["KF_USER_VEHICLE"] == demo["user"]["vehicles"][0]["id"]
    assert exports["KF_VEHICLE"] == demo["vehicles"][0]["vid"]
    assert {"KF_USER_PASSWORD", "KF_OAUTH_SECRET", "KF_REDIRECT", "KF_AUTH"} <= set(exports)


def test_keyfob_env_still_reads_a_file_from_before_the_user_face(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "baseUrl": "http://127.0.0.1:8080/connectedcar/v3",
                "partner": {"login": "demo", "password": "pw", "clientId": "c"},
                "fleetId": "f",
                "vehicles": [{"vid": "v", "vin": "VF3", "motorization": "Electric"}],
            }
        )
    )
    result = CliRunner().invoke(cli, ["env", "--credentials-file", str(path)])
    assert result.exit_code == 0, result.output
    assert "KF_FLEET=f" in result.output
    assert "KF_USER" not in result.output
