"""The user face's ``Remote`` body (B2C, §4): the fleet face's actions, less two, plus
attributes of the remote's own.

The action part is the fleet face's (``remotes.schemas.parse_remote_body``, the only door to an
action), so a door or a navigation is checked once, the same way on both faces. Around it the
user face differs in two ways: ``immobilization`` and ``stolen`` are not offered (decision 18),
and ``attributes`` / ``callbackAttributes`` are (``callbacks.remote_attributes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyfob.callbacks.remote_attributes import MEMBERS, RemoteAttributes, parse_remote_attributes
from keyfob.errors import ErrorCode, KeyfobError
from keyfob.remotes.schemas import ACTIONS, LEGACY_MEMBERS, RemoteBody, parse_remote_body

FLEET_ONLY = ("immobilization", "stolen")
ALLOWED = ("label", *(name for name in ACTIONS if name not in FLEET_ONLY), *MEMBERS)


@dataclass(frozen=True)
class UserRemoteBody:
    body: RemoteBody
    own: RemoteAttributes

    def to_stored(self) -> dict[str, Any]:
        """The ``Remote`` as echoed by GET: the action, the label, the remote's attributes."""
        return {**self.body.to_stored(), **self.own.echo()}


def parse_user_remote_body(data: object) -> UserRemoteBody:
    """Validate a decoded JSON body; every refusal is a ``KeyfobError`` naming the field."""
    if not isinstance(data, dict):
        return UserRemoteBody(parse_remote_body(data), RemoteAttributes())
    offered = [name for name in FLEET_ONLY if name in data]
    if offered:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            "; ".join(f"{name}: not offered on the user face (fleet API only)" for name in offered),
        )
    unknown = [str(key) for key in data if key not in ALLOWED and key not in LEGACY_MEMBERS]
    if unknown:
        raise KeyfobError(
            ErrorCode.INVALID_BODY,
            f"unknown member{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(allowed: {', '.join(ALLOWED)})",
        )
    nulls = [name for name in MEMBERS if name in data and data[name] is None]
    if nulls:
        raise KeyfobError(
            ErrorCode.INVALID_BODY, "; ".join(f"{name}: must not be null" for name in nulls)
        )
    action = {key: value for key, value in data.items() if key not in MEMBERS}
    body = parse_remote_body(action)
    return UserRemoteBody(body, parse_remote_attributes(data))
