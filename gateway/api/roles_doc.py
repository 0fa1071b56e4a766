"""The OpenAPI document names the roles each operation needs (``x-required-roles``, with the
permission in ``x-required-permission`` and a sentence in the description), read from the
operation's own ``require(...)`` dependency so the document cannot drift from what is enforced."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gateway.auth import PERMISSIONS, ROLES

PERMISSION_ATTR = "cbcc_permission"  # set by gateway.api.deps.require on its dependency
PERMISSION_KEY = "x-required-permission"
ROLES_KEY = "x-required-roles"


def _calls(d: Dependant) -> Iterator[Any]:
    for sub in d.dependencies:
        yield sub.call
        yield from _calls(sub)


def roles_for(permission: str) -> list[str]:
    return [r for r in ROLES if permission in PERMISSIONS[r]]


def install(app: FastAPI, routers: Sequence[tuple[str, APIRouter]], any_token: Callable[..., Any]) -> None:
    """Wrap ``app.openapi``; ``routers``: (include prefix, router) as included in ``app``;
    ``any_token`` is the dependency that admits every valid token."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base()
        for prefix, router in routers:
            for route in router.routes:
                if isinstance(route, APIRoute):
                    _annotate(schema["paths"][prefix + route.path_format], route, any_token)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _annotate(item: dict[str, Any], route: APIRoute, any_token: Callable[..., Any]) -> None:
    calls = list(_calls(route.dependant))
    perms = [getattr(c, PERMISSION_ATTR) for c in calls if hasattr(c, PERMISSION_ATTR)]
    for method in route.methods or ():
        op = item[method.lower()]
        perm = perms[0] if perms else op.get(PERMISSION_KEY)
        if perm:
            roles = roles_for(perm)
            op[PERMISSION_KEY] = perm
            text = f"Vai trò (roles): {', '.join(roles)} — quyền (permission) `{perm}`."
        elif any_token in calls:
            roles = list(ROLES)
            text = "Vai trò (roles): mọi token hợp lệ (any valid token)."
        else:
            roles = []
            text = "Không cần token (no token needed)."
        op[ROLES_KEY] = roles
        refused = op.get("responses", {}).get("401")
        if roles and refused is not None:  # failed authentications are limited per source
            why = "Quá nhiều lần xác thực sai từ địa chỉ này (Retry-After)"
            op["responses"].setdefault("429", {**refused, "description": why})
        desc = op.get("description", "")
        op["description"] = f"{desc}\n\n{text}" if desc else text
