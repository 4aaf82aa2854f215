"""Operations: liveness, readiness and Prometheus metrics.

``/health`` is liveness: it answers 200 whenever the process serves HTTP and never touches the
database, so an orchestrator does not restart every replica during a database outage (which
restarting cannot fix). ``/ready`` is readiness: 200 only when this process's acceptor (the
writer of POST remote) runs, every background role it started still works (each role's
``ctx.checks``: the dispatcher's and the delivery worker's loops alive, the dispatcher
connected to its broker) and the database answers a query; else 503 with ``Retry-After`` and
the reasons, and a load balancer sends traffic elsewhere meanwhile. Roles are started before
the server accepts any request, so a served ``/ready`` also implies they were started; each
recovers from database and broker trouble on its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from keyfob.api.deps import Ctx
from keyfob.api.errors import error_response, unavailable_response
from keyfob.errors import ErrorCode
from keyfob.store.outage import unreachable

router = APIRouter(tags=["Operations"])


@router.get("/health", summary="Liveness: the process serves HTTP")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: the database answers and the acceptor runs",
    responses={
        503: {
            "description": "Not ready: the database is unreachable or the server "
            "is starting or stopping"
        }
    },
)
async def ready(ctx: Ctx) -> JSONResponse:
    if not ctx.acceptor.running:
        return error_response(ErrorCode.UNAVAILABLE, "the server is starting or stopping")
    reasons = ctx.not_ready()
    if reasons:
        return error_response(
            ErrorCode.UNAVAILABLE, f"not ready: {'; '.join(reasons)}", {"Retry-After": "5"}
        )
    outage = ctx.database.outage
    try:
        async with ctx.database.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        if not unreachable(exc):
            raise
        outage.failed(exc)
        return unavailable_response(outage)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Ctx) -> Response:
    found, gauges = ctx.metrics, ctx.gauges
    if gauges is not None:
        await gauges.refresh()
        found.set_queue(gauges.outbox_depth, gauges.outbox_age)
    body, content_type = found.render()
    return Response(body, media_type=content_type)
