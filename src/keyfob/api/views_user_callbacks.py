"""The user face's callback and remote answers (b2c ``CallbackRef``, ``UserCallback``,
``RemotePostResponse``, ``RemoteAction``), with their HAL links as the b2c schemas have them:
no ``fleet`` link anywhere, ``self`` where the schema requires it.
"""

from __future__ import annotations

from typing import Any

from keyfob.api.views import remote_action_fields
from keyfob.callbacks.user_service import UserCallback
from keyfob.kit.hal import link
from keyfob.remotes.rows import Remote
from keyfob.remotes.service import Event


def callbacks_href(base: str) -> str:
    return f"{base}/user/callbacks"


def callback_href(base: str, callback_id: str) -> str:
    return f"{callbacks_href(base)}/{callback_id}"


def remotes_href(base: str, vehicle_id: str, callback_id: str) -> str:
    return f"{base}/user/vehicles/{vehicle_id}/callbacks/{callback_id}/remotes"


def callback_ref(base: str, callback: UserCallback, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "_links": {"callback": link(callback_href(base, callback.id))},
        "callbackId": callback.id,
        "status": callback.status.value,
    }
    if secret is not None:
        body["secret"] = secret  # extension: the signing secret, shown only at creation
    return body


def user_callback(base: str, callback: UserCallback) -> dict[str, Any]:
    body: dict[str, Any] = {"_links": {"self": link(callback_href(base, callback.id))}}
    if callback.label is not None:
        body["label"] = callback.label
    body.update(id=callback.id, subscribe=callback.subscribe, status=callback.status.value)
    return body


def remote_post_response(
    base: str, *, vehicle_id: str, callback_id: str, remote_id: str, type_: str
) -> dict[str, Any]:
    return {
        "_links": {
            "callback": link(callback_href(base, callback_id)),
            "remote": link(f"{remotes_href(base, vehicle_id, callback_id)}/{remote_id}"),
        },
        "remoteActionId": remote_id,
        "type": type_,
    }


def remote_action(base: str, remote: Remote, events: list[Event] | None = None) -> dict[str, Any]:
    """A ``RemoteAction``; ``remote`` echoes the posted body, the remote's attributes included."""
    href = remotes_href(base, remote.vehicle_id, remote.callback_id)
    body = remote_action_fields(remote, events)
    echoed = dict(remote.body)
    if remote.attributes:
        echoed["attributes"] = remote.attributes
    if remote.callback_attributes:
        echoed["callbackAttributes"] = remote.callback_attributes
    body["remote"] = echoed
    links = {
        "self": link(f"{href}/{remote.id}"),
        "callback": link(callback_href(base, remote.callback_id)),
    }
    return {"_links": links, **body}
