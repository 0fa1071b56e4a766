"""The FastAPI application: ``create_app(ctx)``."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gateway.api import (
    alarms,
    audit_log,
    cards,
    commands,
    docs_pages,
    doors,
    errors,
    events,
    quarantine,
    readers,
    system,
    tokens,
)
from gateway.api.context import ApiContext
from gateway.api.deps import strict_query
from gateway.api.logs import AccessLog

API_PREFIX = "/api/v1"

DESCRIPTION = """\
API của gateway cbcc (thẻ CBCCVC điện tử): đầu đọc, cửa, sự kiện ra vào và chấm công, báo động,
lệnh, cấu hình, nhật ký kiểm toán.

* Xác thực: `Authorization: Bearer cbcc_<id>_<secret>` (tạo bằng `cbcc gateway token create`).
* Vai trò: **admin** (mọi việc), **facility** (quản lý tòa nhà: đầu đọc, cửa, báo động, lệnh),
  **hr** (nhân sự: xem và xuất sự kiện), **auditor** (kiểm toán: chỉ đọc, kể cả nhật ký kiểm toán).
* Phạm vi đơn vị: token có `unit_scope` chỉ thấy đối tượng thuộc các đơn vị có mã bắt đầu bằng
  tiền tố đó; đối tượng ngoài phạm vi trả về 404.
* Thời gian: ISO 8601, UTC. Phân trang: tham số `cursor` = trường `next` của trang trước.
* Lỗi: `{"detail": "...", "code": "..."}`.
"""


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="cbcc gateway API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "readers", "description": "Đầu đọc (readers)"},
            {"name": "doors", "description": "Cửa (doors)"},
            {"name": "events", "description": "Sự kiện ra vào, chấm công (events)"},
            {"name": "alarms", "description": "Báo động (alarms)"},
            {"name": "commands", "description": "Lệnh tới đầu đọc (commands)"},
            {"name": "cards", "description": "Thẻ và khóa thẻ bị mất (cards, local lock)"},
            {"name": "quarantine", "description": "Tin nhắn bị cách ly (quarantine)"},
            {"name": "audit", "description": "Nhật ký kiểm toán (audit log)"},
            {"name": "tokens", "description": "Token API"},
            {"name": "system", "description": "Sức khỏe và số đo (health, metrics)"},
        ],
        dependencies=[Depends(strict_query)],
        docs_url=None,  # served from local assets by docs_pages (works without internet)
        redoc_url=None,
    )
    docs_pages.install(app)
    app.state.ctx = ctx
    errors.install(app)
    for module in (readers, doors, events, alarms, commands, cards, quarantine, audit_log, tokens):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(system.router)
    app.add_middleware(AccessLog)
    return app
