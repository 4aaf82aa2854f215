"""The campaign runner as a role: starts fleet campaigns' remotes at their pace.

It posts through the process's own acceptor, so it runs where the API runs (``keyfob serve``),
beside it; with several API processes each runs one, and the campaigns' Idempotency-Keys keep
them from starting a vehicle's remote twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from keyfob.remotes.control.campaign_runner import CampaignRunner
from keyfob.runtime.context import AppContext, running_check


@asynccontextmanager
async def campaign_role(ctx: AppContext) -> AsyncIterator[CampaignRunner]:
    runner = CampaignRunner(ctx.database, ctx.acceptor, clock=ctx.clock)
    task = asyncio.create_task(runner.run(), name="campaign-runner")
    ctx.checks["campaigns"] = running_check(task, "the campaign runner")
    try:
        yield runner
    finally:
        ctx.checks.pop("campaigns", None)
        runner.stop()
        await task
