"""Who is calling the user face: an end user, through one OAuth client, in one brand realm.

Built from a verified access token (keyfob's own, or an external issuer's) and handed to the
v4 endpoints, which scope every read and write to ``(client_id, user_id)`` and check the
action's scope before a remote is stored.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    user_id: str
    client_id: str
    """The OAuth client the token was issued to; the request's ``client_id`` must name it."""
    realm: str
    """The canonical (documented) realm the token was issued for."""
    scopes: frozenset[str]
    """Granted scopes, colon form (``remote:door:write``, ``data:telemetry``, ...)."""
