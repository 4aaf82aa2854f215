"""WebSocket and push callbacks through a real ``keyfob serve``, as an operator runs it.

The demo end user signs in over HTTP (login and consent forms, code, token), creates a
WebSocket callback and a push callback, and locks a door through each. The messages travel
through ``serve``'s delivery worker in its child process to a WebSocket receiver and a local
stand-in of FCM (configured with ``KEYFOB_PUSH__*`` variables): each remote's Done arrives.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import serving

from fcm_support import fcm_stand_in
from oauth_support import Registered, tokens_for
from ws_support import ws_receiver

pytestmark = pytest.mark.slow


def statuses(messages: list[dict[str, Any]], remote_id: str) -> list[str]:
    return [
        m["remoteEvent"]["eventStatus"]["status"]
        for m in messages
        if m["remoteEvent"]["remoteActionId"] == remote_id
    ]


def done(messages: list[dict[str, Any]], remote_id: str) -> bool:
    return any(
        m["remoteEvent"]["remoteActionId"] == remote_id
        and m["remoteEvent"]["eventStatus"]["type"] == "Done"
        for m in messages
    )


async def test_a_door_locked_reports_done_by_websocket_and_by_push(tmp_path: Path) -> None:
    async with fcm_stand_in(tmp_path) as fcm, ws_receiver() as hook:
        env = {
            "KEYFOB_SIM_SPEED": "0",
            "KEYFOB_PUSH__SERVICE_ACCOUNT_FILE": str(fcm.key_file),
            "KEYFOB_PUSH__FCM_URL": fcm.url,
        }
        with serving(tmp_path, **env) as served:
            demo = served.demo
            oauth = demo["oauthClient"]
            client = Registered(
                oauth["clientId"], oauth["clientSecret"], oauth["redirectUri"], oauth["realm"]
            )
            root = f"http://127.0.0.1:{served.port}"
            async with httpx.AsyncClient(base_url=root, timeout=10) as browser:
                tokens = await tokens_for(
                    browser, client, demo["user"]["login"], password=demo["user"]["password"]
                )
            headers = {
                "Authorization": f"Bearer {tokens['access_token']}",
                "x-introspect-realm": client.realm,
            }
            async with httpx.AsyncClient(
                base_url=demo["userBaseUrl"],
                headers=headers,
                params={"client_id": client.client_id},
                timeout=10,
            ) as http:
                channels = {
                    "websocket": {"target": hook.url},
                    "pushnotif": {"devices": ["phone-1"]},
                }
                remotes: dict[str, str] = {}
                vehicles = iter(demo["user"]["vehicles"])
                for name, channel in channels.items():
                    created = await http.post(
                        "/user/callbacks", json={"label": name, "callback": {name: channel}}
                    )
                    assert created.status_code == 202, created.text
                    cbid = created.json()["callbackId"]
                    vehicle = next(vehicles)
                    vid = vehicle["id"] if isinstance(vehicle, dict) else vehicle
                    posted = await http.post(
                        f"/user/vehicles/{vid}/callbacks/{cbid}/remotes",
                        json={"door": {"state": "Locked"}},
                    )
                    assert posted.status_code == 202, posted.text
                    remotes[name] = posted.json()["remoteActionId"]

                def pushed() -> list[dict[str, Any]]:
                    return [
                        json.loads(base64.b64decode(m["data"]["mph_message"])) for m in fcm.sent
                    ]

                async with asyncio.timeout(30):
                    while not (
                        done(hook.messages, remotes["websocket"])
                        and done(pushed(), remotes["pushnotif"])
                    ):
                        await asyncio.sleep(0.05)
    for messages, rid in ((hook.messages, remotes["websocket"]), (pushed(), remotes["pushnotif"])):
        seen = statuses(messages, rid)
        assert seen[0] == "Accepted"
        assert seen[-1] in ("Success", "AlreadyDone")
    assert fcm.refused == []
