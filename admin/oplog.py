"""The operation log's one writer: an ASGI middleware around every admin route. It records each change (any
method but GET/HEAD/OPTIONS) and each GET a route marks with an `action` (exports, downloads): who, when, from
where, what, the result and, for a failure, the problem's detail as the reason."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from orgs import logs
from orgs.models import AdminPrincipal

log = logging.getLogger("szt.admin.oplog")
_READS = {"GET", "HEAD", "OPTIONS"}


def _reason(status: int, body: bytes) -> str:
    if status < 400:
        return ""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return f"HTTP {status}"
    if not isinstance(doc, dict):
        return f"HTTP {status}"
    detail = doc.get("detail") or doc.get("title") or ""
    errors = doc.get("errors") or []
    fields = ",".join(str(e.get("field", "")) for e in errors if isinstance(e, dict))
    return f"{doc.get('type', '')}: {detail}" + (f" [{fields}]" if fields else "")


class OpLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        opt: dict[str, Any] = getattr(handler, "opt", None) or {}
        method = str(scope.get("method", ""))
        if scope["type"] != "http" or (method in _READS and "action" not in opt) or opt.get("no_oplog"):
            await self.app(scope, receive, send)
            return
        status = 500
        body = bytearray()
        written = False

        async def capture(message: Message) -> None:
            nonlocal status, written
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if status >= 400 and len(body) < 8192:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False) and not written:
                    # logged before the client sees the end of the response, so a search right after finds it
                    written = True
                    await self._write(scope, method, opt, status, bytes(body))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not written:
                await self._write(scope, method, opt, status, bytes(body))

    async def _write(self, scope: Scope, method: str, opt: dict[str, Any], status: int, body: bytes) -> None:
        state = scope.get("state", {})
        principal = state.get("admin")
        client = scope.get("client")
        params = scope.get("path_params") or {}
        try:
            await logs.record_op(
                scope["app"].state.resources,
                principal=principal if isinstance(principal, AdminPrincipal) else None,
                username=str(state.get("op_username", "")),
                ip=client[0] if client else "",
                method=method,
                path=scope.get("path", ""),
                action=str(opt.get("action") or f"{method} {scope.get('path_template', scope.get('path', ''))}"),
                target=str(state.get("op_target") or ",".join(str(v) for v in params.values())),
                status=status,
                reason=_reason(status, body),
            )
        except Exception:  # the action itself has happened; a lost log line must be loud, not a 500
            log.exception("operation log write failed")
