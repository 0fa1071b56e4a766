"""The FastAPI application: ``create_app(ctx)``."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gateway import console
from gateway.api import (
    alarms,
    attendance,
    audit_log,
    cards,
    commands,
    docs_pages,
    doors,
    errors,
    events,
    quarantine,
    readers,
    roles_doc,
    system,
    tokens,
)
from gateway.api.context import ApiContext
from gateway.api.deps import get_principal, strict_query
from gateway.api.logs import AccessLog

API_PREFIX = "/api/v1"

DESCRIPTION = """\
API của gateway cbcc (thẻ CBCCVC điện tử): đầu đọc, cửa, sự kiện ra vào và chấm công, báo động,
lệnh, cấu hình, nhật ký kiểm toán.

* Xác thực: `Authorization: Bearer cbcc_<id>_<secret>` (tạo bằng `cbcc gateway token create`).
* Vai trò: **admin** (mọi việc), **facility** (quản lý tòa nhà: đầu đọc, cửa, báo động, lệnh),
  **hr** (nhân sự: xem và xuất sự kiện), **auditor** (kiểm toán: chỉ đọc, kể cả nhật ký kiểm toán).
* Mỗi thao tác ghi vai trò cần có trong `x-required-roles` (và quyền trong `x-required-permission`).
* Phạm vi đơn vị: token có `unit_scope` chỉ thấy đơn vị đó và các đơn vị con, so theo từng đoạn mã
  (`H01.05` thấy `H01.05` và `H01.05.02`, không thấy `H01.050`); đối tượng ngoài phạm vi trả về 404.
* Xác thực sai quá nhiều lần từ một địa chỉ (10 lần, rồi 1 lần mỗi 2 giây): 429 với `Retry-After`,
  trước khi token được kiểm tra.
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
            {"name": "attendance", "description": "Chấm công, bảng chấm công (attendance, timesheets)"},
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
    routers = [(API_PREFIX, m.router) for m in (readers, doors, events, alarms, commands, cards, attendance,
                                               quarantine, audit_log, tokens)]  # fmt: skip
    routers.append(("", system.router))
    for prefix, router in routers:
        app.include_router(router, prefix=prefix)
    console.install(app, ctx)  # the web console at /console (gateway/console)
    app.add_middleware(AccessLog)
    roles_doc.install(app, routers, get_principal)
    return app
