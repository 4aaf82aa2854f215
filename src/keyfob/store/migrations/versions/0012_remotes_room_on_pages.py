"""remotes leave room on their pages, on PostgreSQL

A remote's row is rewritten two or three times on its way to Done (queued, sent, done), within a
second or so of its insert, while its page is still the one that new remotes go to. With full
pages each new version goes to another page, which is then read, dirtied and logged as well.
With three tenths of each page kept free (``fillfactor`` 70, as ``notifications`` has had
since migration 0002), the new versions stay on the page of the old ones. It applies to pages
written from now on; SQLite has no such setting.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE remotes SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE remotes RESET (fillfactor)")
