"""The vehicle side of keyfob: wire protocol, topics, transports and the wake-up channel.

Everything here is independent of the database and of the public API, so a real telematics
unit, the simulator and the dispatcher runner all meet on the same small surface:

    protocol   messages and their JSON encoding (``encode`` / ``decode``)
    topics     where each message travels (``keyfob/v1/vehicles/{vin}/...``)
    transport  the ``Transport`` interface, its errors, topic matching, reconnect backoff
    memory     an in-process broker for the one-process default
    mqtt       the same interface over a real MQTT broker (MQTT 3.1.1 over asyncio)
    wakeup     the out-of-band wake-up channel (an SMS in real life)
"""
