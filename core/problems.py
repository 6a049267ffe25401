"""RFC 9457 problem documents for every error: HTTP errors, validation errors and unexpected exceptions."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from core.observe import current_request_id

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:szt:problem:"
log = logging.getLogger("szt.problems")


class FieldError(msgspec.Struct, omit_defaults=True):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The wire shape, also used as the documented schema of every error response."""

    type: str
    title: str
    status: int
    title_zh: str = ""
    detail: str = ""
    instance: str = ""
    request_id: str = ""
    errors: list[FieldError] = []


# status -> (slug, English title, Chinese title) for errors raised without a specific problem type.
_GENERIC: dict[int, tuple[str, str, str]] = {
    400: ("bad-request", "Bad request", "请求无效"),
    401: ("unauthorized", "Authentication required", "需要身份认证"),
    403: ("forbidden", "Forbidden", "无权访问"),
    404: ("not-found", "Not found", "资源不存在"),
    405: ("method-not-allowed", "Method not allowed", "不支持的请求方法"),
    409: ("conflict", "Conflict", "请求冲突"),
    413: ("payload-too-large", "Request body too large", "请求体过大"),
    415: ("unsupported-media-type", "Unsupported media type", "不支持的内容类型"),
    422: ("unprocessable", "Unprocessable request", "请求无法处理"),
    429: ("rate-limited", "Too many requests", "请求过于频繁"),
    500: ("internal", "Internal server error", "服务器内部错误"),
    502: ("bad-gateway", "Upstream service failed", "上游服务异常"),
    503: ("unavailable", "Service unavailable", "服务暂不可用"),
    504: ("gateway-timeout", "Upstream service timed out", "上游服务超时"),
}


class ProblemError(Exception):
    """Raise anywhere to answer with a problem document of a stable `type`."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        title_zh: str,
        detail: str = "",
        *,
        field: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.title_zh = title_zh
        self.detail = detail
        self.errors = list(errors or [])
        if field is not None:
            self.errors.append(FieldError(field=field, message=detail or title))
        self.headers = headers or {}


def invalid(field: str, message: str) -> ProblemError:
    """A 400 naming the offending field: the common case of input validation in services."""
    return ProblemError(400, "validation", "Invalid request", "请求参数无效", message, field=field)


def not_found(what: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", "资源不存在", f"{what} not found")


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    slug: str,
    title: str,
    title_zh: str,
    detail: str = "",
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    rid = current_request_id()
    if not rid:  # outside the Observability layer (an app used on its own): still give the client an id
        rid = uuid.uuid4().hex
        headers = {**(headers or {}), "X-Request-ID": rid}
    body = Problem(
        type=TYPE_BASE + slug,
        title=title,
        title_zh=title_zh,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else "",
        request_id=rid,
        errors=errors or [],
    )
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(extra: Any) -> list[FieldError]:
    out: list[FieldError] = []
    if isinstance(extra, list):
        for item in extra[:20]:
            if isinstance(item, dict):
                key = str(item.get("key") or item.get("source") or "body")
                out.append(FieldError(field=key, message=str(item.get("message", "invalid"))[:300]))
    return out


def handle_problem(request: Request[Any, Any, Any], exc: ProblemError) -> Response[Problem]:
    return problem_response(request, exc.status, exc.slug, exc.title, exc.title_zh, exc.detail, exc.errors, exc.headers)


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    slug, title, title_zh = _GENERIC.get(status, ("http-" + str(status), "HTTP error", "请求错误"))
    errors: list[FieldError] = []
    detail = exc.detail if exc.detail and exc.detail.lower() != title.lower() else ""
    if isinstance(exc, ValidationException):
        slug, title, title_zh = "validation", "Invalid request", "请求参数无效"
        errors = _validation_errors(exc.extra)
        if not errors:
            errors = [FieldError(field="body", message=str(exc.detail)[:300])]
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)[:500]
    headers = dict(exc.headers or {})
    if isinstance(exc, NotAuthorizedException):
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(request, status, slug, title, title_zh, detail[:500], errors, headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if _is_data_error(exc):
        # PostgreSQL refused a value (SQLSTATE class 22: a character it cannot store, a number out of range) or
        # asyncpg could not encode one: input core.edge did not catch (a multipart field). The client's fault, a
        # 400; logged with its stack, since an edge check is missing.
        log.warning("data refused by the database", exc_info=exc, extra={"path": request.url.path})
        return problem_response(
            request, 400, "invalid-data", "Invalid data", "数据无效", "a value cannot be stored (characters, range)"
        )
    # The stack goes to the log with the request id; the client only learns the id.
    log.exception("unhandled error", extra={"path": request.url.path})
    slug, title, title_zh = _GENERIC[500]
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR, slug, title, title_zh)


def _is_data_error(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(exc, asyncpg.DataError)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ProblemError: handle_problem,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "FieldError", "MediaType", "Problem", "ProblemError"]
