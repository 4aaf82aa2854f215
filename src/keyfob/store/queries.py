"""Query shapes more than one domain uses: a filtered collection and one page of it, and a
column hidden from the planner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from keyfob.kit.paging import PageRequest


async def paged(
    conn: AsyncConnection,
    table: Table,
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[ColumnElement[Any]],
    page: PageRequest,
) -> tuple[int, Sequence[Row[Any]]]:
    """The size of the filtered collection and the rows of the requested page."""
    total = (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
    rows = (
        await conn.execute(
            select(table).where(*where).order_by(*order_by).offset(page.offset).limit(page.limit())
        )
    ).all()
    return int(total), rows


def unindexed(column: ColumnElement[str]) -> ColumnElement[str]:
    """``column || ''``: the same value, which no index and no partial index condition matches.

    A queue's statistics are wrong by nature (sampled in a quiet minute, the rows in some state
    look few), and a planner that believes them reads every row in that state, live or dead,
    through the index that leads with it. Hiding the column leaves the planner the one way in
    that stays cheap whatever the statistics say.
    """
    hidden: ColumnElement[str] = column.concat(literal_column("''"))
    return hidden
