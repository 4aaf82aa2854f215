"""OAuth scopes of the user face, and the scope each remote action needs (spec §1.4).

Scopes are spelled in the colon form. A first-party OAuth client asking only for
``openid profile`` is granted every data and remote scope, as the brand apps are; a third-party
client gets exactly what it asked for and was allowed.
"""

from __future__ import annotations

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
