"""The HTTP layer: the contract's routes, admin and ops routes, error rendering, OpenAPI.

``app.create_app(settings)`` assembles the application; its lifespan prepares the database and
hosts the background roles of ``keyfob.runtime``. Handlers stay thin: parse, call a domain
service in one unit of work, render (``views``, ``errors``). ``lean`` serves POST remote without
the framework's routing and dependency solving. FastAPI and Starlette are imported here only.

May import ``keyfob.runtime`` (the typed ``AppContext``, the roles) and everything below it;
never ``keyfob.cli`` or ``keyfob.listen``.
"""
