"""Composition: what a keyfob process is made of, and how its parts are started and stopped.

    context        ``AppContext``, the typed set of long-lived objects a process shares
    bootstrap      getting the database ready (migrations, the demo tenant on an empty one)
    demo           the demo partner, fleet and vehicles, and the credentials file
    tables         every domain's tables on one metadata (migrations, schema checks, tests)
    roles          ``Role``, ``hosting`` (start in order, stop in reverse) and the roles
                   ``keyfob serve`` combines; ``delivery_role``, ``vehicle_role`` each one role
    standalone     one or more roles in a process of their own (``keyfob worker|dispatcher``)
    tls            ``keyfob serve``'s HTTPS and client-certificate files, checked before start-up
    gauges         the database-wide gauges of ``/metrics``, read when scraped

May import every domain package, the store, the vehicle link and the simulator; never
``keyfob.api``, ``keyfob.listen`` or ``keyfob.cli``, which sit above it: the API's lifespan
hosts the roles and its handlers read ``AppContext`` (``docs/architecture.md`` says why).
"""
