"""Operations: liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyfob.api.deps import Ctx
from keyfob.notifications import queue

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Liveness and database reachability")
async def health(ctx: Ctx) -> dict[str, str]:
    async with ctx.database.read() as conn:
        await queue.queue_stats(conn, now=ctx.clock())
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Ctx) -> Response:
    found = ctx.metrics
    async with ctx.database.read() as conn:
        depth, age = await queue.queue_stats(conn, now=ctx.clock())
    found.set_queue(depth, age)
    body, content_type = found.render()
    return Response(body, media_type=content_type)
