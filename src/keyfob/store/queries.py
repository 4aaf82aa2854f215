"""Query shapes more than one domain uses: a filtered collection and one page of it, a column
hidden from the planner, and a list of keys as one parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Row,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

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


class OneOf(ColumnElement[bool]):
    """``column`` is one of the list given as parameter ``name``; see ``one_of``."""

    __visit_name__ = "keyfob_one_of"
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: SQLite must not get ``... = 1``

    def __init__(self, column: ColumnElement[str], name: str) -> None:
        self.column = column
        self.name = name


def one_of(column: ColumnElement[str], name: str) -> ColumnElement[bool]:
    """``column IN (...)`` over the list given as parameter ``name``, for keys looked up by a
    unique or selective index.

    SQLAlchemy expands an ``IN`` list into a parameter per value, so every length is another
    SQL text: rendered again on each call, and prepared again by asyncpg, which keeps a hundred
    statements per connection. A batch of a dispatcher or a worker comes in a new length
    almost every time. On PostgreSQL the list goes as one array instead, ``column =
    ANY($1::VARCHAR[])``: one text, prepared once, whose generic plan is the key's index scan.
    The cast has no length, so a longer value is compared whole, never cut. SQLite has no
    arrays and keeps the ``IN`` list.

    Only for columns whose index makes every plan cheap: with a prepared statement PostgreSQL
    soon plans once for every list (the generic plan), without the values, and a look-up whose
    cost depends on the values (a state with many dead entries) keeps its ``IN`` list, planned
    for each call.
    """
    return OneOf(column, name)


@compiles(OneOf)
def _one_of_in(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    listed = element.column.in_(bindparam(element.name, expanding=True))
    return compiler.process(listed, **kw)


@compiles(OneOf, "postgresql")
def _one_of_any(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    array = bindparam(element.name, type_=ARRAY(String()))
    return compiler.process(element.column == any_(array), **kw)
