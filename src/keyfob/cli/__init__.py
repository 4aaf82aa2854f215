"""The ``keyfob`` command: serve, db, admin, and the separate roles."""
