"""Everything about the database, and nothing about what is stored in it.

    engine     URLs, engines (SQLite in WAL behind one connection, a PostgreSQL pool),
               ``Database`` with its ``transaction()`` / ``read()`` units of work
    schema     the one ``metadata`` every domain declares its tables on, shared column types
    queries    query shapes several domains use (a filtered collection and one page of it)
    units      a unit of work written once as a plan of steps, run the cheapest way per engine
    _sqlite    the SQLite fast path under ``units`` (private: it leans on driver internals)
    _asyncpg   the PostgreSQL one: plain steps straight to asyncpg, in SQLAlchemy's transaction
    nudge      PostgreSQL ``NOTIFY`` / ``LISTEN`` between processes
    outage     which driver errors mean "unreachable" (a 503, not a bug); one log line per outage
    migrate    alembic migrations (``migrations/``), applied from async code

May import: ``keyfob.kit``, ``keyfob.config``, ``keyfob.errors``, SQLAlchemy and the drivers.
Never a domain package or the vehicle link: the domains import the store, and
``keyfob.runtime.tables`` gathers their tables when the whole schema is wanted.
"""
