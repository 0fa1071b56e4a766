"""Liveness (``/healthz``, no token) and Prometheus metrics (``/metrics``)."""

from __future__ import annotations

import logging
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.deps import Ctx, bearer, get_principal
from gateway.api.errors import responses, role_may_not
from gateway.api.schemas import Health
from gateway.auth import METRICS_READ
from gateway.metrics import REGISTRY
from messages import _

log = logging.getLogger("cbcc.api")
router = APIRouter(tags=["system"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "CSDL không truy cập được, hoặc ghi sự kiện bị kẹt"}},
    summary="Kiểm tra sống (liveness; pings the database and checks that ingest commits, no token)",
)
def healthz(ctx: Ctx) -> JSONResponse:
    stuck = ctx.ingest_health.stuck() if ctx.ingest_health is not None else None
    ingest = {"ingest": "stuck", "reason": stuck} if stuck else {"ingest": "ok"}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.warning(_("health check: database unreachable ({error})", error=type(exc).__name__))
        return JSONResponse({"status": "error", "database": "unreachable", **ingest}, status_code=503)
    if stuck:
        log.warning(_("health check: ingest stuck ({reason})", reason=stuck))
        return JSONResponse({"status": "error", "database": "ok", **ingest}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", **ingest})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        },
        **responses(401, 403),
    },
    summary="Số đo Prometheus (metrics; auditor/admin token unless configured open)",
    openapi_extra={"x-required-permission": METRICS_READ},
)
def metrics(
    request: Request,
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    if not ctx.metrics_without_token():
        principal = get_principal(request, ctx, creds)
        if not principal.can(METRICS_READ):
            raise role_may_not(principal.role, "metrics:read")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
