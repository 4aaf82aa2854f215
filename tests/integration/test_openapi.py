"""keyfob against its own ``/openapi.json``: generated requests find no 5xx and no answer the
document does not describe.

Schemathesis generates valid and invalid requests for every operation and calls the app in
process (ASGI). Most cases are pointed at real resources (a fleet, a vehicle, callbacks, a
remote) so bodies reach the deep validation; one in four keeps its generated path ids. The run
is bounded and derandomized: the same examples every time. It uses its own SQLite app because
schemathesis drives the app from its own event loop.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_schema_validator import OAS31Validator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from test_api_callbacks import VALID_VARIANTS as VALID_CALLBACKS
from test_api_remotes import VALID as VALID_REMOTES

from conftest import CALLBACK, make_settings
from keyfob.api.app import create_app
from keyfob.api.request_schemas import REMOTE, REMOTE_CALLBACK_SUBSCRIBE
from keyfob.api.routes_deliveries import REPLAY_SINCE

ADMIN_TOKEN = "schema-run-admin-token"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
REDIRECTED = itertools.count()
MAX_EXAMPLES = 8
ANSWERED: dict[str, set[int]] = {}


@dataclass(frozen=True)
class Demo:
    """The provisioned partner and the resources cases are pointed at."""

    basic: str
    client_id: str
    ids: dict[str, str]
    edit_callback: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app(
        make_settings(
            f"sqlite:///{folder / 'keyfob.db'}",
            vehicles=3,
            credentials_file=folder / "demo.json",
            admin_token=ADMIN_TOKEN,
        ),
        announce=lambda _: None,
    )
    yield app, folder
    asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(running: tuple[Any, Path]) -> Any:
    app, _ = running
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def demo(running: tuple[Any, Path], api_schema: Any) -> Demo:
    """Read the demo credentials (written by the lifespan) and create what cases aim at."""
    app, folder = running
    document = json.loads((folder / "demo.json").read_text())
    login, password = document["partner"]["login"], document["partner"]["password"]
    basic = "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()
    client_id = document["partner"]["clientId"]
    fleet = document["fleetId"]
    vehicle = document["vehicles"][0]
    with asgi.get_client(app) as client:
        client.headers["Authorization"] = basic
        client.params = {"client_id": client_id}
        root = f"/connectedcar/v3/fleets/{fleet}"
        subscription: Any = CALLBACK
        callbacks = [
            client.post(f"{root}/remote/callbacks", json=subscription).json()["callbackId"]
            for _ in range(2)
        ]
        remote = client.post(
            f"{root}/vehicles/{vehicle['vid']}/callbacks/{callbacks[0]}/remotes",
            json={"wakeUp": {}},
        ).json()["remoteActionId"]
    ids = {
        "fid": fleet,
        "vid": vehicle["vid"],
        "vin": vehicle["vin"],
        "cbid": callbacks[0],
        "rid": remote,
        "login": login,
    }
    return Demo(basic, client_id, ids, edit_callback=callbacks[1])


def aim(case: schemathesis.Case[Any], demo: Demo) -> None:
    """Point most cases at real resources; callback edits get a callback of their own."""
    if next(REDIRECTED) % 4 == 3 or not case.path_parameters:
        return
    editing = "/remote/callbacks/{cbid}" in case.operation.path and case.method != "GET"
    for name in case.path_parameters:
        if name in demo.ids:
            case.path_parameters[name] = demo.ids[name]
        if name == "cbid" and editing:
            case.path_parameters[name] = demo.edit_callback


def documented_statuses(case: schemathesis.Case[Any]) -> set[str]:
    return {str(code) for code in case.operation.definition.raw["responses"]}


def check_case(case: schemathesis.Case[Any], demo: Demo) -> None:
    aim(case, demo)
    admin = case.operation.path.startswith("/admin")
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}" if admin else demo.basic}
    if not admin:
        case.query = {**(case.query or {}), "client_id": demo.client_id}
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    ANSWERED.setdefault(case.operation.label, set()).add(response.status_code)
    documented = documented_statuses(case)
    # "default" documents the xError shape of any error, as the official contract does; every
    # status keyfob actually sends must also be listed on its own.
    assert str(response.status_code) in documented, (
        f"{response.status_code} is not among {sorted(documented)}: {response.text[:300]}"
    )


def free_text(shape: dict[str, Any]) -> bool:
    """Any string (or absent) is valid for this parameter."""
    if set(shape) - {"type", "title", "description", "anyOf"}:
        return False
    options = shape.get("anyOf", [{"type": shape.get("type")}])
    return all(set(o) <= {"type"} and o.get("type") in ("string", "null") for o in options)


def can_be_invalid(operation: dict[str, Any]) -> bool:
    """False when every input is free text: no request can break the document then."""
    if "requestBody" in operation:
        return True
    return not all(free_text(p.get("schema", {})) for p in operation.get("parameters", []))


def explore(operation: Any, mode: GenerationMode, demo: Demo) -> None:
    """Run the bounded, derandomized search of one operation in one generation mode."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def search(case: schemathesis.Case[Any]) -> None:
        check_case(case, demo)

    search()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_documented_answers(
    api_schema: Any, demo: Demo, mode: GenerationMode
) -> None:
    failures: list[str] = []
    explored = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        explored += 1
        if mode is GenerationMode.NEGATIVE and not can_be_invalid(operation.definition.raw):
            continue
        try:
            explore(operation, mode, demo)
        except Exception as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert explored >= 14
    assert not failures, "\n\n".join(failures)
    if mode is GenerationMode.POSITIVE:
        # The aimed cases reached the handlers: valid bodies were stored, not only refused.
        for label in (
            "POST /connectedcar/v3/fleets/{fid}/remote/callbacks",
            "POST /connectedcar/v3/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes",
        ):
            assert ANSWERED[label] & {200, 202}, f"{label} never succeeded: {ANSWERED[label]}"


def test_request_bodies_are_documented_with_their_shapes(running: tuple[Any, Path]) -> None:
    app, _ = running
    paths = app.openapi()["paths"]

    def body_schema(path: str, method: str) -> Any:
        content = paths[path][method]["requestBody"]["content"]
        assert list(content) == ["application/json"]
        return content["application/json"]["schema"]

    callbacks = "/connectedcar/v3/fleets/{fid}/remote/callbacks"
    assert body_schema(callbacks, "post") == REMOTE_CALLBACK_SUBSCRIBE
    assert body_schema(callbacks + "/{cbid}", "put") == REMOTE_CALLBACK_SUBSCRIBE
    status = body_schema(callbacks + "/{cbid}/status", "put")
    assert status["properties"]["status"]["enum"] == ["Running", "Paused"]
    remote = body_schema(
        "/connectedcar/v3/fleets/{fid}/vehicles/{vid}/callbacks/{cbid}/remotes", "post"
    )
    assert remote == REMOTE
    assert len(remote["oneOf"]) == 9
    replay = body_schema(callbacks + "/{cbid}/deliveries/replay", "post")
    assert replay == REPLAY_SINCE
    assert replay["required"] == ["since"]
    assert replay["properties"]["since"]["format"] == "date-time"
    since = OAS31Validator(replay)
    assert since.is_valid({"since": "2026-01-01T00:00:00Z"})
    assert not since.is_valid({})
    assert not since.is_valid({"since": "2026-01-01T00:00:00Z", "until": "2026-02-01T00:00:00Z"})


def test_published_body_schemas_accept_what_keyfob_accepts() -> None:
    """A client generated from /openapi.json must be able to send every body keyfob takes."""
    remote = OAS31Validator(REMOTE)
    for name, body, _, _ in VALID_REMOTES:
        problems = [e.message for e in remote.iter_errors(body)]
        assert not problems, f"{name}: {problems}"
    subscribe = OAS31Validator(REMOTE_CALLBACK_SUBSCRIBE)
    callbacks: list[tuple[str, Any]] = [("CALLBACK", CALLBACK), *VALID_CALLBACKS]
    for name, body in callbacks:
        problems = [e.message for e in subscribe.iter_errors(body)]
        assert not problems, f"{name}: {problems}"
    refused: dict[str, Any] = {
        "two actions": {"horn": {"state": "Activated"}, "door": {"state": "Locked"}},
        "no action": {"label": "x"},
        "legacy member": {"ligths": {"on": True}},
        "stolen with two members": {"stolen": {"stolen": True, "trackingPeriod": {"running": 9}}},
        "preferences with immediate": {
            "charging": {"immediate": True, "preferences": {"level": "Level1"}}
        },
        "latitude out of range": {
            "navigation": {"positions": [{"type": "Point", "coordinates": [2.0, 95.0]}]}
        },
    }
    for name, bad in refused.items():
        assert not remote.is_valid(bad), f"the published Remote schema admits {name}"


def test_every_operation_documents_its_errors_as_xerror(running: tuple[Any, Path]) -> None:
    app, _ = running
    document = app.openapi()
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
    for path, operations in document["paths"].items():
        if not path.startswith(("/connectedcar", "/admin")):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert "422" not in responses or "Idempotency" in responses["422"]["description"], where
            for status in ("401", "429", "500", "default"):
                assert status in responses, f"{where} does not document {status}"
            for status, answer in responses.items():
                if status == "default" or status.startswith(("4", "5")):
                    assert list(answer["content"]) == ["application/json"], f"{where} {status}"
                    shape = answer["content"]["application/json"]["schema"]
                    if status == "401" and path.startswith("/connectedcar/v4"):
                        # A refused Bearer token gets the gateway's body (decision 28).
                        shapes = {s["title"]: s for s in shape["anyOf"]}
                        assert set(shapes) == {"XError", "GatewayUnauthorized"}, where
                        assert shapes["GatewayUnauthorized"]["required"] == [
                            "httpCode",
                            "httpMessage",
                            "moreInformation",
                        ]
                        shape = shapes["XError"]
                    assert shape["title"] == "XError", f"{where} {status}"
                    assert shape["required"] == ["code", "uuid", "message", "timestamp"]
