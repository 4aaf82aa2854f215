"""``keyfob listen``: a webhook receiver for developers to watch notifications arrive.

A tool beside the platform, not part of it: it checks signatures with the code that signs them.
May import ``keyfob.runtime`` and everything below it (it uses ``notifications.signing``,
``kit`` and ``errors``); never ``keyfob.api`` or ``keyfob.cli``.
"""
