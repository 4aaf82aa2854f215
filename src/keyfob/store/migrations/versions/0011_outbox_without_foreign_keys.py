"""outbox without foreign keys: events, notifications and attempts no longer lock their parents

Every row that references another through a foreign key makes the database look the parent up
and lock it in KEY SHARE mode, a write to the parent's row header on PostgreSQL. A remote
writes about four events, four notifications and four delivery attempts, all pointing at one
callback row (and the remote's row), from the API, the dispatcher and the workers at once:
about fifteen look-ups and locks per remote, nine of them on the same callback row, and a
shared lock held by several transactions becomes a multixact. In the scaled benchmark they
cost PostgreSQL about an eighth of its CPU per remote.

These rows are written by keyfob alone, in the transaction that writes or reads their parents,
and no parent is ever deleted (callbacks are marked deleted; remotes and events are history),
so the references hold by construction. The remote keeps its own keys (fleet, vehicle,
callback, owner): they check what a request names, once per remote.

On SQLite the three tables are rebuilt (batch mode); it takes a while on a large database.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_KEYS = {
    "remote_events": [("remote_id", "remotes", "id")],
    "notifications": [
        ("callback_id", "callbacks", "id"),
        ("remote_id", "remotes", "id"),
        ("event_id", "remote_events", "id"),
    ],
    "delivery_attempts": [("callback_id", "callbacks", "id")],
}


def _name(table: str, column: str, referred: str) -> str:
    return f"fk_{table}_{column}_{referred}"


def upgrade() -> None:
    for table, keys in _KEYS.items():
        with op.batch_alter_table(table) as batch_op:
            for column, referred, _ in keys:
                batch_op.drop_constraint(_name(table, column, referred), type_="foreignkey")


def downgrade() -> None:
    for table, keys in reversed(_KEYS.items()):
        with op.batch_alter_table(table) as batch_op:
            for column, referred, key in keys:
                batch_op.create_foreign_key(
                    _name(table, column, referred), referred, [column], [key]
                )
