"""One structured JSON log line per request: method, path, status, duration, token id.

Never the query string (it may hold a staff code), the body, or the token secret.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cbcc.api.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        start = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            line = {
                "event": "http_request",
                "method": scope.get("method", ""),
                "path": scope.get("path", "")[:256],
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "token_id": state.get("token_id"),
            }
            if "auth_failure" in state:
                line["auth_failure"] = state["auth_failure"]
            log.info(json.dumps(line, ensure_ascii=False))
