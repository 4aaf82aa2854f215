"""The user face's callback and remote operations as ``/openapi.json`` publishes them.

A client generated from the document must be able to send every body keyfob takes, and the
document must not promise what keyfob refuses (fleet-only actions, channels not offered).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from conftest import make_settings
from keyfob.api.app import create_app
from keyfob.api.request_schemas_user import USER_CALLBACK_SUBSCRIBE, USER_REMOTE
from keyfob.callbacks.targets import TargetPolicy
from keyfob.callbacks.user_schemas import parse_user_callback_body
from keyfob.remotes.user_schemas import parse_user_remote_body

CALLBACKS = "/connectedcar/v4/user/callbacks"
REMOTES = "/connectedcar/v4/user/vehicles/{id}/callbacks/{cbid}/remotes"
WEBHOOK = {"name": "app", "target": "https://app.example.com/hook"}
ATTRIBUTE = {"type": "Header", "key": "X-Car", "value": "$Vin"}
CALLBACK_BODIES: list[dict[str, Any]] = [
    {"callback": {"webhook": WEBHOOK}},
    {"label": "ha", "type": ["Remote"], "callback": {"webhook": {**WEBHOOK, "attributes": []}}},
    {
        "type": ["Monitor", "Remote"],
        "callback": {"webhook": {**WEBHOOK, "attributes": [ATTRIBUTE]}},
    },
    {"callback": {"websocket": {"target": "wss://ws.example.com/feed"}}},
    {
        "callback": {
            "websocket": {
                "target": "wss://ws.example.com/feed?user=u&password=p",
                "attributes": [{"key": "k", "value": "$Vin"}],
            }
        }
    },
    {
        "callback": {
            "pushnotif": {
                "devices": ["fcm-token-1", "fcm-token-2"],
                "attributes": [
                    {"key": "title", "value": "$RemoteLabel"},
                    {"type": "Body", "key": "k", "value": "v"},
                ],
            }
        }
    },
]
REMOTE_BODIES: list[dict[str, Any]] = [
    {"door": {"state": "Locked"}},
    {"label": "beep", "horn": {"state": "Activated"}},
    {"wakeUp": {"action": "WakeUp"}},
    {
        "lights": {"on": True},
        "attributes": [{"type": "Body", "key": "k", "value": "$RemoteStatus"}],
        "callbackAttributes": {"webhook": [ATTRIBUTE]},
    },
    {"navigation": {"positions": [{"type": "Point", "coordinates": [2.35, 48.85]}]}},
]


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder: Path = tmp_path_factory.mktemp("user-openapi")
    app = create_app(make_settings(f"sqlite:///{folder / 'k.db'}"), announce=lambda _: None)
    found: dict[str, Any] = app.openapi()
    return found


def body_schema(document: dict[str, Any], path: str, method: str) -> Any:
    content = document["paths"][path][method]["requestBody"]["content"]
    assert list(content) == ["application/json"]
    return content["application/json"]["schema"]


def test_the_user_face_operations_are_published(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths[CALLBACKS]) == {"get", "post"}
    assert set(paths[CALLBACKS + "/{cbid}"]) == {"get", "put", "delete"}
    assert set(paths[CALLBACKS + "/{cbid}/status"]) == {"put"}
    assert set(paths[REMOTES]) == {"get", "post"}
    assert set(paths[REMOTES + "/{rid}"]) == {"get"}
    assert body_schema(document, CALLBACKS, "post") == USER_CALLBACK_SUBSCRIBE
    assert body_schema(document, CALLBACKS + "/{cbid}", "put") == USER_CALLBACK_SUBSCRIBE
    assert body_schema(document, REMOTES, "post") == USER_REMOTE
    assert set(paths[CALLBACKS]["post"]["responses"]) >= {"202", "400", "401", "429"}
    assert set(paths[REMOTES]["post"]["responses"]) >= {"202", "400", "401", "403", "404", "409"}


def test_published_bodies_accept_what_keyfob_accepts_and_not_what_it_refuses() -> None:
    subscribe, remote = OAS31Validator(USER_CALLBACK_SUBSCRIBE), OAS31Validator(USER_REMOTE)
    for body in CALLBACK_BODIES:
        parse_user_callback_body(body, target_policy=TargetPolicy(), push_offered=True)
        assert not [e.message for e in subscribe.iter_errors(body)], body
    for body in REMOTE_BODIES:
        parse_user_remote_body(body)
        assert not [e.message for e in remote.iter_errors(body)], body
    for refused in (
        {"callback": {"webhook": WEBHOOK, "websocket": {"target": "wss://x.example.com/"}}},
        {
            "callback": {
                "websocket": {
                    "target": "wss://x.example.com/",
                    "attributes": [{"type": "Header", "key": "k", "value": "v"}],
                }
            }
        },
        {"callback": {"pushnotif": {"devices": []}}},
        {"callback": {"webhook": WEBHOOK}, "remoteTypes": ["Horn"]},
        {"callback": {"webhook": WEBHOOK}, "type": []},
    ):
        assert not subscribe.is_valid(refused), refused
    for refused in (
        {"immobilization": {"activate": True}},
        {"stolen": {"stolen": True}},
        {"door": {"state": "Locked"}, "horn": {"state": "Activated"}},
        {"door": {"state": "Locked"}, "attributes": [{"type": "Query", "key": "q", "value": "1"}]},
    ):
        assert not remote.is_valid(refused), refused
