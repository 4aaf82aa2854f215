"""user face auth: end users, their vehicles, OAuth clients, grants, codes, tokens, keys

The user face (``/connectedcar/v4``) needs accounts of its own beside the partners: end users
who own vehicles (a vehicle keeps its fleet), the OAuth clients apps sign in through, and what
the authorization server keeps between requests, all of it shared by every API process
through the database: authorization codes and refresh tokens (as digests), grants (one
sign-in, so one revocation reaches every token it issued), revocations of access tokens, and
the signing keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import keyfob.store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, keyfob.store.schema.UtcDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("login", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("login", name=op.f("uq_users_login")),
    )
    op.create_table(
        "user_vehicles",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_vehicles_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"], ["vehicles.id"], name=op.f("fk_user_vehicles_vehicle_id_vehicles")
        ),
        sa.PrimaryKeyConstraint("user_id", "vehicle_id", name=op.f("pk_user_vehicles")),
    )
    op.create_index("ix_user_vehicles_vehicle", "user_vehicles", ["vehicle_id"])
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.String(length=2000), nullable=False),
        sa.Column("realm", sa.String(length=64), nullable=False),
        sa.Column("first_party", sa.Boolean(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    op.create_table(
        "oauth_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=2000), nullable=False),
        sa.Column("realm", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_oauth_grants_client_id_oauth_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_oauth_grants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_grants")),
    )
    op.create_index("ix_oauth_grants_user", "oauth_grants", ["user_id"])
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.String(length=2000), nullable=False),
        sa.Column("realm", sa.String(length=64), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        _at("created_at"),
        _at("expires_at"),
        _at("used_at", nullable=True),
        sa.Column("grant_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_authorization_codes_client_id_oauth_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_authorization_codes_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oauth_grants.id"],
            name=op.f("fk_authorization_codes_grant_id_oauth_grants"),
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authorization_codes")),
    )
    op.create_index("ix_authorization_codes_expires", "authorization_codes", ["expires_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        _at("rotated_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["oauth_grants.id"],
            name=op.f("fk_refresh_tokens_grant_id_oauth_grants"),
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_refresh_tokens")),
    )
    op.create_index("ix_refresh_tokens_grant", "refresh_tokens", ["grant_id"])
    op.create_index("ix_refresh_tokens_expires", "refresh_tokens", ["expires_at"])
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_revocations")),
    )
    op.create_index("ix_token_revocations_created", "token_revocations", ["created_at"])
    op.create_index("ix_token_revocations_expires", "token_revocations", ["expires_at"])
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_index("ix_signing_keys_created", "signing_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_signing_keys_created", table_name="signing_keys")
    op.drop_table("signing_keys")
    op.drop_index("ix_token_revocations_expires", table_name="token_revocations")
    op.drop_index("ix_token_revocations_created", table_name="token_revocations")
    op.drop_table("token_revocations")
    op.drop_index("ix_refresh_tokens_expires", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_grant", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_authorization_codes_expires", table_name="authorization_codes")
    op.drop_table("authorization_codes")
    op.drop_index("ix_oauth_grants_user", table_name="oauth_grants")
    op.drop_table("oauth_grants")
    op.drop_table("oauth_clients")
    op.drop_index("ix_user_vehicles_vehicle", table_name="user_vehicles")
    op.drop_table("user_vehicles")
    op.drop_table("users")
