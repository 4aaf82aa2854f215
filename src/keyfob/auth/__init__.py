"""Who is calling, and what they may do.

Partners (the fleet face's tenants), their password hashes and HTTP Basic + ``client_id``
authentication; per-partner rate budgets; for the user face, end users, OAuth clients, brand
realms and scopes.

May import ``keyfob.store`` and the bottom layer (``kit``, ``config``, ``errors``,
``vocabulary``). Never another domain: ``vehicles``, ``callbacks`` and ``notifications`` are
independent of it.
"""
