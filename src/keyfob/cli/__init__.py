"""The ``keyfob`` command, and only the commands.

Each command turns its options into ``Settings`` and calls the package that does the work:
``serve`` runs ``api.app.create_app`` with ``runtime.roles.embedded_roles`` under uvicorn;
``worker`` and ``dispatcher`` host one role through ``runtime.standalone``; ``sim``, ``listen``,
``env``, ``db`` and ``admin`` do the rest; ``--version`` prints ``keyfob.__version__``. The
long-running commands share ``logs``: ``--log-level``, ``--log-format`` and ``--metrics-port``.

The top layer: may import any keyfob package, and none imports it.
"""
