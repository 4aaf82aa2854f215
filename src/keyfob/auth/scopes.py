"""OAuth scopes of the user face, and the scope each remote action needs (spec §1.4).

Scopes are spelled in the colon form. A first-party OAuth client asking only for
``openid profile`` is granted every data and remote scope, as the brand apps are; a third-party
client gets exactly what it asked for and was allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from keyfob.auth.oauth_errors import OAuthError
from keyfob.vocabulary import RemoteType

OPENID = frozenset({"openid", "profile"})
DATA_SCOPES = frozenset(
    {
        "data:telemetry",
        "data:position",
        "data:trip",
        "data:alert",
        "data:collision",
        "data:vehicle:devices:pnc",
    }
)
REMOTE_SCOPE: dict[RemoteType, str] = {
    RemoteType.THERMAL_PRECONDITIONING: "remote:preconditioning:write",
    RemoteType.DOORS: "remote:door:write",
    RemoteType.HORN: "remote:horn:write",
    RemoteType.ELECTRIC_BATTERY_CHARGING_REQUEST: "remote:charging:write",
    RemoteType.LIGHTS: "remote:lights:write",
    RemoteType.WAKE_UP: "remote:wakeup:write",
    RemoteType.NAVIGATION: "remote:navigation:write",
}
"""Immobilization and Stolen are not offered on the user face (decision 18)."""
REMOTE_SCOPES = frozenset(REMOTE_SCOPE.values())
ALL_SCOPES = OPENID | DATA_SCOPES | REMOTE_SCOPES


def scope_for(remote_type: RemoteType) -> str | None:
    """The scope a remote of this type needs, or ``None`` when the user face has no such action."""
    return REMOTE_SCOPE.get(remote_type)


def parse_scopes(raw: str | None) -> tuple[str, ...]:
    """Scopes as sent: space-separated (RFC 6749) or comma-separated (the old docs); in
    order, duplicates removed."""
    if not raw:
        return ()
    return tuple(dict.fromkeys(part for part in re.split(r"[\s,]+", raw) if part))


def grant_scopes(
    requested: Iterable[str], *, allowed: frozenset[str], first_party: bool
) -> frozenset[str]:
    """What a client is granted for what it asked (consumers' rules).

    Nothing asked means everything the client is allowed. A first-party client that asks for
    no data or remote scope (the brand apps ask ``openid profile``) gets every data and remote
    scope it is allowed besides what it asked; otherwise a client gets what it asked and is
    allowed, so a narrower request is honoured. Names keyfob does not know are ignored
    (RFC 6749 §3.3 lets the server grant less). Nothing left is ``invalid_scope``.
    """
    asked = frozenset(requested) & ALL_SCOPES
    if not frozenset(requested):
        asked = allowed
    granted = asked & allowed
    if first_party and not asked & (DATA_SCOPES | REMOTE_SCOPES):
        granted |= allowed & (DATA_SCOPES | REMOTE_SCOPES)
    if not granted:
        raise OAuthError("invalid_scope", "none of the requested scopes can be granted")
    return granted


def scope_text(scopes: Iterable[str]) -> str:
    """Scopes as OAuth writes them: space-separated, here in a stable (sorted) order."""
    return " ".join(sorted(scopes))
