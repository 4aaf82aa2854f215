"""Tables of the user face: end users, their vehicles, OAuth clients, and what sign-in leaves.

A *grant* is one sign-in of one user through one client: the exchanged authorization code
starts it, every refresh continues it, and revoking its refresh token (or reusing a code)
ends it with every access token it issued (they carry its id as ``sid``). Codes and refresh
tokens are stored as SHA-256 digests, never as sent. ``token_revocations`` is what every API
process reads to refuse revoked access tokens (``auth.revocations``); ``signing_keys`` holds
the ES256 keys every process signs and verifies with (``auth.keys``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from keyfob.store.schema import UtcDateTime, metadata

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "login", String(254), nullable=False, unique=True
    ),  # An e-mail address, kept in lower case.
    Column("password_hash", String(256), nullable=False),
    Column("first_name", String(100), nullable=True),
    Column("last_name", String(100), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

# Which vehicles a user may reach through the user face; the vehicle keeps its fleet.
user_vehicles = Table(
    "user_vehicles",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id"), primary_key=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.id"), primary_key=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_user_vehicles_vehicle", "vehicle_id"),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    # ``None`` for a public client (PKCE only).
    Column("secret_hash", String(128), nullable=True),
    Column("name", String(200), nullable=False),
    Column("redirect_uris", JSON, nullable=False),
    Column(
        "scopes", String(2000), nullable=False
    ),  # Space-separated scopes the client may be granted.
    # The canonical realm name (``auth.realms``).
    Column("realm", String(64), nullable=False),
    Column("first_party", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("client_id", String(128), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("scope", String(2000), nullable=False),
    Column("realm", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_oauth_grants_user", "user_id"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(128), ForeignKey("oauth_clients.client_id"), nullable=False),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("redirect_uri", String(2000), nullable=False),
    Column("scope", String(2000), nullable=False),
    Column("realm", String(64), nullable=False),
    Column("code_challenge", String(128), nullable=True),
    Column("nonce", String(512), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column(
        "grant_id", String(32), ForeignKey("oauth_grants.id"), nullable=True
    ),  # The grant the code's exchange started: revoked if the code is presented again.
    Index("ix_authorization_codes_expires", "expires_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", String(32), ForeignKey("oauth_grants.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column(
        "rotated_at", UtcDateTime, nullable=True
    ),  # Set when it was exchanged for its successor; presenting it again revokes the grant.
    Index("ix_refresh_tokens_grant", "grant_id"),
    Index("ix_refresh_tokens_expires", "expires_at"),
)

token_revocations = Table(
    "token_revocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "kind", String(8), nullable=False
    ),  # ``token`` (an access token's ``jti``) or ``grant`` (every token with that ``sid``).
    Column("value", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column(
        "expires_at", UtcDateTime, nullable=False
    ),  # After it no token it covers is valid anyway; the row may go.
    Index("ix_token_revocations_created", "created_at"),
    Index("ix_token_revocations_expires", "expires_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column(
        "private_key", Text, nullable=False
    ),  # PKCS#8 PEM. Whoever reads the database can sign tokens: protect it as such.
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_signing_keys_created", "created_at"),
)
