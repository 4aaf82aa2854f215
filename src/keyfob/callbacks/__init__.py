"""Callbacks: where and how notifications are delivered, for a fleet or for an end user.

The fleet face's callback body (target, remote types, retry policy, batching, attributes) and
the user face's (``user_schemas``: type, one channel), the parsing both share (``parsing``),
``$variable`` templating of attributes with each face's variables, a user remote's own
attributes (``remote_attributes``), the rules a webhook target must pass (no internal
addresses), signing secrets and their rotation, and the services that store callbacks
(``service`` for fleets, ``user_service`` for a user through one OAuth client).

May import ``keyfob.store`` and the bottom layer (``kit``, ``config``, ``errors``,
``vocabulary``). Never another domain: ``notifications`` and ``remotes`` import callbacks, not
the reverse.
"""
