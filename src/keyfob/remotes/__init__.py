"""Remote actions: from the accepted request to the vehicle's answer.

The body contract (``schemas``, ``bodies``) and what a vehicle's capabilities allow
(``eligibility``); accepting remotes with group commit (``accept``, with ``accept_fleet`` and
``accept_user`` for each face's checks and ``staging`` for what both write; ``user_schemas``);
the lifecycle as a pure
function (``lifecycle``, ``checks``), its database side (``progress``) and the ``dispatcher``
that drives it over the vehicle link; recording events (``events``) and reading remotes;
counting them for ``/metrics`` (``metrics``).

May import the packages below it: ``notifications``, ``callbacks``, ``vehicles``, ``auth``,
``keyfob.store``, ``keyfob.link`` and the bottom layer. Never ``keyfob.sim`` (the dispatcher
meets the simulator only on the link), ``runtime``, ``api`` or ``cli``.
"""
