"""The vehicle link: how the platform and a vehicle talk, and nothing else.

A real telematics unit, the simulator and the dispatcher all meet on this small surface:

    protocol      messages and their JSON encoding (``encode`` / ``decode``)
    topics        where each message travels (``keyfob/v1/vehicles/{vin}/...``)
    transport     the ``Transport`` interface, its errors, topic matching, reconnect backoff
    memory        an in-process broker for the one-process default
    mqtt          the same interface over a real MQTT broker (MQTT 3.1.1 over asyncio)
    mqtt_packets  the MQTT 3.1.1 packets ``mqtt`` reads and writes
    wakeup        the out-of-band wake-up channel (an SMS in real life)

May import ``keyfob.kit``, ``keyfob.errors`` and ``keyfob.vocabulary`` (the contract's words a
result carries), nothing else of keyfob: no settings, no database, no domain, no API. The
dispatcher that drives remotes over it lives with the lifecycle, in ``keyfob.remotes``.
"""
