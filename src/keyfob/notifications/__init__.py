"""Webhook delivery: from the outbox row to the POST, and what became of it.

An event's notification row is written in the event's own transaction (``outbox``). The
delivery ``worker`` leases due rows as the POSTs that will carry them (``queue``), builds and
signs each body (``payload`` for the fleet face's ``RemoteEvents``; ``message`` and
``user_delivery`` for the user face's ``Message``; ``signing``), sends it outside any
transaction through the SSRF-safe ``sender``, decides what follows (``outcome``, ``policy``)
and records every attempt (``ledger``), logging a failed one (``failures``); ``metrics`` counts
them. ``inspect`` is the delivery log and its replays.

May import ``keyfob.callbacks`` (a notification goes to a callback), ``keyfob.store`` and the
bottom layer. Never ``vehicles`` or ``auth`` (independence contract): a notification carries its
event whole and needs nothing else.
"""
