"""Callbacks: where and how a fleet's remote notifications are delivered.

The callback body (target, remote types, retry policy, batching, attributes) and its checks,
``$variable`` templating of attributes, the rules a webhook target must pass (no internal
addresses), signing secrets and their rotation, and the service that stores callbacks.

May import ``keyfob.store`` and the bottom layer (``kit``, ``config``, ``errors``,
``vocabulary``). Never another domain: ``notifications`` and ``remotes`` import callbacks, not
the reverse.
"""
