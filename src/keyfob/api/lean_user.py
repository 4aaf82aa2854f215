"""POST remote of the user face without FastAPI's routing and dependency solving.

The user face's twin of ``api.lean``: the router's second route claims
``POST /connectedcar/v4/user/vehicles/{id}/callbacks/{cbid}/remotes`` and takes the documented
route's steps (``routes_user_remotes.post_remote``) through the same functions, in the same
order, inside every middleware:

    user_access.admit_user (client_id, U+0000, realm, Bearer token, budget) ─►
    Idempotency-Key ─► Content-Type ─► JSON body ─► acceptor (group commit) ─► 202 HAL

Refusals are raised and rendered by the app's handlers (the gateway's 401 body included); the
OAuth client's ``X-RateLimit-*`` headers are left in ``scope["state"]`` for
``RateLimitHeaders``. ``Settings.lean_accept = false`` leaves it out of the router.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from keyfob.api import remote_post
from keyfob.api.http import HalResponse
from keyfob.api.lean import (
    Disconnected,
    LeanRemotePost,
    admitted,
    query_of,
    request_body,
    wanted_headers,
    window_of,
)
from keyfob.api.user_access import admit_user, bearer_token

PATH = re.compile(r"/connectedcar/v4/user/vehicles/([^/]+)/callbacks/([^/]+)/remotes")


class LeanUserRemotePost(LeanRemotePost):
    """A route: POST remote on the user face, answered as its documented route answers it."""

    path = path_format = "/connectedcar/v4/user/vehicles/{id}/callbacks/{cbid}/remotes"
    name = "lean_post_user_remote"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return Match.NONE, {}
        if b"dryRun" in scope["query_string"]:  # the documented route runs dry runs
            return Match.NONE, {}
        found = PATH.fullmatch(scope["path"])
        if found is None:
            return Match.NONE, {}
        vehicle_id, callback_id = found.groups()
        params = {"id": vehicle_id, "cbid": callback_id}
        return Match.FULL, {"route": self, "endpoint": self.handle, "path_params": params}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self._accept_user(scope, receive)
        except Disconnected:
            return
        await response(scope, receive, send)

    async def _accept_user(self, scope: Scope, receive: Receive) -> HalResponse:
        ctx = self.ctx
        state: dict[str, Any] = scope.setdefault("state", {})
        params = scope["path_params"]
        request_headers = wanted_headers(scope)
        query, client_id = query_of(scope)
        caller = await admitted(
            state,
            admit_user(
                ctx,
                token=bearer_token(request_headers.get(b"authorization")),
                client_id=client_id,
                realm=request_headers.get(b"x-introspect-realm"),
                path_params=params,
                query=query,
            ),
        )
        key, data = await request_body(request_headers, receive)
        window = window_of(request_headers, ctx)
        vehicle_id, callback_id = params["id"], params["cbid"]
        posted = await remote_post.accept_user(
            ctx,
            caller=caller,
            vehicle_id=vehicle_id,
            callback_id=callback_id,
            key=key,
            data=data,
            window=window,
            budget=b"keyfob-budget" in request_headers,
        )
        base = self._base_url(scope, "v4")
        body, headers = remote_post.user_answer(base, vehicle_id, callback_id, posted)
        return HalResponse(body, status_code=202, headers=headers)
