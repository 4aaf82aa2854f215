"""Simulated vehicles that speak only the vehicle wire protocol.

The simulator is the first client of ``docs/vehicle-protocol.md``: it sees commands and wake-up
signals, nothing of the database or the services, so whatever works against it works against a
real telematics unit that follows the same document.

    vehicle      the pure state machine of one car (rules, actions, physics, status, scenario)
    outbox       the results a car still owes the platform (``delivery`` sends them)
    faults       seeded fault injection
    fleet        runs many vehicles over any ``Transport``
    mqtt_fleet   the same over a real broker, one lightweight MQTT client per vehicle

May import ``keyfob.link`` and the bottom layer (``kit``, ``config``, ``errors``,
``vocabulary``) only: no store, no domain, no runtime, no SQLAlchemy (its own contract).
"""
