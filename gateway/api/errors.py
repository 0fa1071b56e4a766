"""One error body for every failure: ``{"detail": "...", "code": "..."}``.

``detail`` is a sentence for people, ``code`` a stable word for programs. Validation failures
add ``errors`` (where and what). Nothing internal (SQL, stack traces, token secrets) is returned.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from messages import N_, _

log = logging.getLogger("cbcc.api")


class ErrorBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"detail": "reader not found", "code": "not_found"},
            ]
        }
    )

    detail: str = Field(description="Mô tả lỗi cho người đọc (what went wrong, for people)")
    code: str = Field(description="Mã lỗi ổn định cho chương trình (stable error code)")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Chi tiết lỗi kiểm tra dữ liệu (validation details, 422 only)"
    )


class ApiError(Exception):
    """``detail`` is an English message id (messages/vi.po), formatted with ``params`` in the
    language of the request; ``word_params`` name messages.api tables whose word replaces the key."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        word_params: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.params = params or {}
        self.word_params = word_params or {}

    def text(self, lang: str) -> str:
        from messages import Message, api, gettext

        tables = {"thing": api.THING, "role": api.ROLE, "action": api.ACTION}
        values = dict(self.params)
        for name, table in self.word_params.items():
            values[name] = api.word(tables[table], values[name], lang)
        if isinstance(self.detail, Message):  # a domain error's text (messages._): render it again
            return self.detail.in_lang(lang)
        template = gettext(self.detail, lang)
        try:
            return template.format(**values) if values else template
        except (KeyError, IndexError, ValueError):
            return self.detail.format(**values) if values else self.detail


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", N_("{thing} not found"), params={"thing": what},
                    word_params={"thing": "thing"})  # fmt: skip


def unauthorized(
    detail: str = N_("A valid API token is required (Authorization: Bearer cbcc_…)."),
) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


def forbidden(detail: str = N_("This token's role may not do that."), code: str = "forbidden") -> ApiError:
    return ApiError(403, code, detail)


def role_may_not(role: str, permission: str) -> ApiError:
    """The HR user's ``role 'hr' may not readers read`` as a sentence, in the caller's language."""
    return ApiError(403, "forbidden", N_("The {role} role may not {action}."),
                    params={"role": role, "action": permission},
                    word_params={"role": "role", "action": "action"})  # fmt: skip


def conflict(detail: str, **params: str) -> ApiError:
    """``detail``: a message id (``N_``) with ``{params}``, or a domain error's text (:func:`reason`)."""
    return ApiError(409, "conflict", detail, params=params)


def invalid(detail: str, code: str = "invalid", **params: str) -> ApiError:
    return ApiError(422, code, detail, params=params)


def reason(exc: BaseException, limit: int = 300) -> str:
    """A domain error's message for ``detail``: kept whole when it can be rendered in the
    request's language (``messages._``), else its text cut to ``limit`` characters."""
    from messages import Message

    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, Message) else str(exc)[:limit]


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


# What routing itself refuses (no such path, a method the path does not take), for people.
_ROUTING = {
    404: N_("no such API path"),
    405: N_("this API path does not take that method"),
    406: N_("the requested response type is not available"),
    413: N_("the request is too large"),
    415: N_("the request body's type is not accepted"),
}


def _body(detail: str, code: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"detail": detail, "code": code}
    if errors is not None:
        out["errors"] = errors
    return out


def validation_text(error: Any, lang: str) -> str:
    """One validation failure in the request's language (:func:`messages.api.validation_reason`)."""
    from messages import text_in
    from messages.api import validation_reason

    return text_in(validation_reason(error), lang)


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the submitted values (they may be personal data or secrets)."""
    out = []
    for e in errors:
        out.append(
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
        )
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        from messages.api import lang_of

        lang = lang_of(request.headers.get("accept-language"))
        headers = {**(exc.headers or {}), "Content-Language": lang}
        return JSONResponse(_body(exc.text(lang), exc.code), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        from messages.api import lang_of

        lang = lang_of(request.headers.get("accept-language"))
        raw = list(exc.errors())
        errors = _clean_errors(raw)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        what = validation_text(raw[0], lang) if raw else str(first["msg"])
        detail = f"{where}: {what}" if where else what
        headers = {"Content-Language": lang}
        body = jsonable_encoder(_body(detail, "invalid_request", errors))
        return JSONResponse(body, status_code=422, headers=headers)

    from gateway.api.deps import allowed_methods  # deps imports this module

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        from http import HTTPStatus

        from messages import render
        from messages.api import lang_of

        lang = lang_of(request.headers.get("accept-language"))
        detail = exc.detail if isinstance(exc.detail, str) else ""
        known = exc.status_code in HTTPStatus._value2member_map_
        phrase = HTTPStatus(exc.status_code).phrase if known else ""
        if detail in ("", phrase):  # Starlette's own English phrase: ours instead, in the caller's language
            detail = render(_ROUTING.get(exc.status_code, N_("request refused")), {}, lang)
        headers = {**(getattr(exc, "headers", None) or {}), "Content-Language": lang}
        if exc.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(
            _body(detail, _CODES.get(exc.status_code, "error")),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            _("unhandled error on {method} {path}: {error}",
              method=request.method, path=request.url.path, error=type(exc).__name__),
            exc_info=exc,
        )  # fmt: skip
        from messages import render
        from messages.api import lang_of

        lang = lang_of(request.headers.get("accept-language"))
        body = _body(render(N_("internal error"), {}, lang), "internal")
        return JSONResponse(body, status_code=500, headers={"Content-Language": lang})


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with :class:`ErrorBody`."""
    text = {
        400: "Yêu cầu sai (bad request)",
        401: "Thiếu hoặc sai token (missing or bad token)",
        403: "Vai trò không được phép (role not allowed)",
        404: "Không tìm thấy (not found, or outside the token's unit scope)",
        409: "Xung đột (conflict)",
        413: "Quá lớn (too large)",
        422: "Dữ liệu không hợp lệ (invalid input)",
        503: "Dịch vụ chưa sẵn sàng (service unavailable)",
    }
    return {s: {"model": ErrorBody, "description": text.get(s, "Lỗi (error)")} for s in statuses}
