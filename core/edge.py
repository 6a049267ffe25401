"""The server's edge, one ASGI layer in front of every app (core.server): bad bytes refused, the client as a trusted
proxy reports it, and the headers every answer carries.

Requests — refused with a 400 problem (`urn:szt:problem:validation`) naming the field, before any app sees them:
- C0 control characters other than tab, newline and carriage return, and DEL, in the path, in any query parameter
  (name or value), in any field of a JSON body (keys and string values, at any depth) or of an urlencoded form;
- invalid UTF-8 in a JSON body, a query parameter or a form field;
- JSON nested deeper than MAX_DEPTH arrays/objects (a thousand `[` used to end in a RecursionError);
- integers beyond the 64-bit range (MAX_INT) in a JSON body or as a query parameter: no field of ours holds one,
  and PostgreSQL's bigint cannot.
A body is checked as JSON when its content type says JSON, or when it has no form or multipart type and starts like
JSON (a client omitting the type still reaches JSON handlers). Bodies larger than `max_body_bytes` pass unchecked
to the app, which refuses them (413). Multipart bodies (file uploads) are not inspected.
The cheap checks run first (C-level searches over the raw bytes); a request is decoded and walked only when one of
them flags it.

Responses:
- every answer: `X-Content-Type-Options: nosniff`, `Referrer-Policy: strict-origin` (unless the app set one) —
  not `no-referrer`, under which browsers send `Origin: null` with a same-origin form post and the console's
  Origin check refuses its own forms;
- HTML: a `Content-Security-Policy` with `frame-ancestors 'none'` (and `X-Frame-Options: DENY`) unless the page sets
  its own; a page's own CSP without `frame-ancestors` gets `frame-ancestors 'none'` added;
- `Cache-Control: no-store` unless the app set a Cache-Control: on every answer to a request with credentials
  (`Authorization` or a cookie) — so every authenticated API answer, the identity-code image and `/bff/v1/me` —
  on every answer to a method other than GET/HEAD (token-issuing POSTs: sessions, enrolments, refresh) and on
  every answer that sets a cookie (the login QR page binds the browser with one).
  A handler opts out by setting its own Cache-Control;
- `Secure` on every cookie set when the public URL is https or a trusted proxy says the request came over https.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec

from core import forwarded
from core.observe import ASGIApp, Message, Receive, Scope, Send, current_request_id, send_body
from core.problems import PROBLEM_JSON, TYPE_BASE, FieldError, Problem
from core.settings import Settings

MAX_DEPTH = 32
MAX_INT = 2**63 - 1

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Cheap first looks, over the raw bytes; only a request they flag is decoded and walked. In JSON: an escaped
# control character (`\u0000`-`\u001f`, `\u007f`; tab, newline, return are flagged too and let through by the walk)
# or a raw DEL (raw C0 characters are malformed JSON, refused by the decoder anyway). In a query string or form: an
# escaped control or non-ASCII byte, or a raw one. In both: a run of 19 digits (a possible integer beyond 64 bits).
_JSON_ESCAPE = re.compile(rb"\\u00(?:[01]|7[fF])")
_URL_ESCAPE = re.compile(rb"%[01789A-Fa-f]")
_URL_RAW = re.compile(rb"[\x00-\x1f\x7f-\xff]")
_DIGITS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_RUN = b"1" * 19
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INT_TEXT = re.compile(r"^[+-]?\d+$")

DEFAULT_CSP = b"frame-ancestors 'none'; object-src 'none'; base-uri 'self'"


class _Refused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------- request checks


def _text(value: str, field: str) -> None:
    m = _CONTROL.search(value)
    if m:
        raise _Refused(field, f"control character U+{ord(m.group()):04X} not allowed")


def _show_key(key: str) -> str:
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _depth_path(body: bytes) -> str:
    """The path (`[0].a[2]`) at which `body` first nests deeper than MAX_DEPTH. Attack case only: a Python walk."""
    path: list[str] = []
    kinds: list[int] = []
    index: list[int] = []
    pending_key = ""
    for m in re.finditer(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', body, re.DOTALL):
        tok = m.group()
        c = tok[0]
        if c == 0x22:  # a string: a key when inside an object and a ':' follows
            if kinds and kinds[-1] == 0x7B:
                after = body[m.end() : m.end() + 64].lstrip()
                if after[:1] == b":":
                    try:
                        pending_key = msgspec.json.decode(tok)
                    except msgspec.DecodeError:
                        pending_key = "?"
        elif c in (0x5B, 0x7B):
            if kinds:
                path.append(f"[{index[-1]}]" if kinds[-1] == 0x5B else f".{pending_key}")
            kinds.append(c)
            index.append(0)
            if len(kinds) > MAX_DEPTH:
                return "".join(path).lstrip(".") or "body"
        elif c in (0x5D, 0x7D):
            if kinds:
                kinds.pop()
                index.pop()
                if path:
                    path.pop()
        elif c == 0x2C and index:
            index[-1] += 1
    return "body"


def _depth(body: bytes) -> int:
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for c in brackets:
        if c in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _walk(doc: Any) -> None:
    """Depth-first over a decoded JSON document (depth already bounded): the first bad value, named by its path."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            _text(value, path or "body")
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        elif isinstance(value, int):
            if not -MAX_INT - 1 <= value <= MAX_INT:
                raise _Refused(path or "body", "integer out of range")
        elif isinstance(value, dict):
            items = list(value.items())
            for key, item in reversed(items):
                name = f"{path}.{key}" if path else str(key)
                if _CONTROL.search(key):
                    raise _Refused(f"{path}.{_show_key(key)}" if path else _show_key(key), "control character in a key")
                stack.append((name, item))
        elif isinstance(value, list):
            for i in range(len(value) - 1, -1, -1):
                stack.append((f"{path}[{i}]", value[i]))


def check_json(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused("body", f"not valid UTF-8 (byte {exc.start})") from None
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _depth(body) > MAX_DEPTH:
        raise _Refused(_depth_path(body), f"nested deeper than {MAX_DEPTH} levels")
    suspect = (b"\\u00" in body and _JSON_ESCAPE.search(body)) or b"\x7f" in body
    if not suspect and _LONG_RUN not in body.translate(_DIGITS):
        return
    try:
        doc = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return  # malformed: the app's decoder answers that with its own 400
    _walk(doc)


def _pairs(raw: bytes, what: str) -> None:
    for part in raw.split(b"&"):
        if not part:
            continue
        name_b, _, value_b = part.partition(b"=")
        try:
            name = unquote_to_bytes(name_b.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(what, "parameter name is not valid UTF-8") from None
        _text(name, _show_key(name) or what)
        try:
            value = unquote_to_bytes(value_b.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(name, "not valid UTF-8") from None
        _text(value, name)
        if len(value) >= 19 and _INT_TEXT.match(value) and not -MAX_INT - 1 <= int(value) <= MAX_INT:
            raise _Refused(name, "integer out of range")


def check_urlencoded(raw: bytes, what: str) -> None:
    if (b"%" in raw and _URL_ESCAPE.search(raw)) or _URL_RAW.search(raw) or _LONG_RUN in raw.translate(_DIGITS):
        _pairs(raw, what)


def _request_headers(scope: Scope) -> tuple[bytes, int | None, bool]:
    """(content type, content length, whether the request carries credentials) in one pass."""
    content_type = b""
    length: int | None = None
    credentials = False
    for k, v in scope["headers"]:
        if k == b"content-type":
            content_type = bytes(v).lower()
        elif k == b"content-length":
            try:
                length = int(v)
            except ValueError:
                length = None
        elif k == b"authorization" or k == b"cookie":
            credentials = True
    return content_type, length, credentials


def _body_kind(content_type: bytes) -> str:
    mime = content_type.split(b";", 1)[0].strip()
    if mime == b"application/json" or mime.endswith(b"+json"):
        return "json"
    if mime == b"application/x-www-form-urlencoded":
        return "form"
    if mime.startswith(b"multipart/"):
        return ""
    return "maybe-json"


# ---------------------------------------------------------------- response headers


def _has(headers: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(k.lower() == name for k, _ in headers)


def _secure(cookie: bytes) -> bytes:
    return cookie if b"secure" in cookie.lower().replace(b" ", b"").split(b";") else cookie + b"; Secure"


class Edge:
    """ASGI: trusted-proxy rewrite, request checks, response headers. See the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.max_body = settings.max_body_bytes
        self.proxies = bool(forwarded.trusted_networks(settings.trusted_proxies))  # a bad setting fails here
        self.https_public = settings.base_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self.proxies:
                forwarded.apply(scope, self.settings)
            await self.app(scope, receive, send)
            return
        if self.proxies:
            forwarded.apply(scope, self.settings)
        content_type, length, credentials = _request_headers(scope)
        method = scope["method"]
        sender = self._sender(send, credentials or method not in ("GET", "HEAD"), self._secure(scope))
        try:
            self._check_target(scope)
            if method in _BODY_METHODS:
                receive = await self._check_body(content_type, length, receive)
        except _Refused as refused:
            await self._refuse(scope, sender, refused)
            return
        await self.app(scope, receive, sender)

    def _secure(self, scope: Scope) -> bool:
        if self.https_public:
            return True
        if scope.get("scheme") == "http" and "szt.peer" not in scope:
            return False  # a plain connection, no trusted proxy in front of it
        return forwarded.is_https(scope, self.settings)

    # -- requests

    @staticmethod
    def _check_target(scope: Scope) -> None:
        path: str = scope["path"]
        if _CONTROL.search(path):
            raise _Refused("path", "control character in the path")
        qs: bytes = scope.get("query_string", b"")
        if qs:
            check_urlencoded(qs, "query")

    async def _check_body(self, content_type: bytes, length: int | None, receive: Receive) -> Receive:
        kind = _body_kind(content_type)
        if not kind or (length is not None and (length > self.max_body or length == 0)):
            return receive
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):  # the common case: one piece
            body: bytes = message.get("body", b"")
            more = False
            last: Message | None = None
        else:
            chunks: list[bytes] = []
            size = 0
            more = True
            last = None
            while True:
                if message["type"] != "http.request":
                    last = message  # the client went away: hand the app what we have, then that
                    break
                chunk = message.get("body", b"")
                chunks.append(chunk)
                size += len(chunk)
                more = message.get("more_body", False)
                if not more or size > self.max_body:
                    break  # complete, or too large: the app refuses it (413) as it reads on
                message = await receive()
            body = b"".join(chunks)
        if not more and last is None:
            if kind == "json" or (kind == "maybe-json" and body.lstrip()[:1] in (b"{", b"[")):
                check_json(body)
            elif kind == "form":
                check_urlencoded(body, "body")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            if last is not None:
                return last
            return await receive()

        return replay

    async def _refuse(self, scope: Scope, send: Send, refused: _Refused) -> None:
        doc = Problem(
            type=TYPE_BASE + "validation",
            title="Invalid request",
            title_zh="请求参数无效",
            status=400,
            detail=f"{refused.field}: {refused.message}",
            instance=scope["path"],
            request_id=current_request_id(),
            errors=[FieldError(field=refused.field, message=refused.message)],
        )
        await send_body(send, 400, msgspec.json.encode(doc), [(b"content-type", PROBLEM_JSON.encode())])

    # -- responses

    def _sender(self, send: Send, no_store: bool, secure: bool) -> Send:
        headers = self._headers

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = headers(list(message.get("headers", ())), no_store, secure)
            await send(message)

        return sender

    @staticmethod
    def _headers(headers: list[tuple[bytes, bytes]], no_store: bool, secure: bool) -> list[tuple[bytes, bytes]]:
        html = False
        csp_at = -1
        cache = nosniff = referrer = frame = False
        for i, (k, v) in enumerate(headers):
            name = k if k.islower() else k.lower()
            if name == b"content-type":
                html = v.lower().startswith(b"text/html")
            elif name == b"content-security-policy":
                csp_at = i
            elif name == b"cache-control":
                cache = True
            elif name == b"x-content-type-options":
                nosniff = True
            elif name == b"referrer-policy":
                referrer = True
            elif name == b"x-frame-options":
                frame = True
            elif name == b"set-cookie":
                no_store = True  # an answer that sets a cookie is for this client alone
                if secure:
                    headers[i] = (k, _secure(bytes(v)))
        if not nosniff:
            headers.append((b"x-content-type-options", b"nosniff"))
        if not referrer:
            headers.append((b"referrer-policy", b"strict-origin"))
        if no_store and not cache:
            headers.append((b"cache-control", b"no-store"))
        if html:
            if csp_at < 0:
                headers.append((b"content-security-policy", DEFAULT_CSP))
                if not frame:
                    headers.append((b"x-frame-options", b"DENY"))
            elif b"frame-ancestors" not in headers[csp_at][1]:
                k, v = headers[csp_at]
                headers[csp_at] = (k, bytes(v).rstrip(b"; ") + b"; frame-ancestors 'none'")
                if not frame:
                    headers.append((b"x-frame-options", b"DENY"))
        return headers


def wrap(app: ASGIApp, settings: Settings) -> ASGIApp:
    return Edge(app, settings)


__all__ = ["MAX_DEPTH", "MAX_INT", "Edge", "check_json", "check_urlencoded", "wrap"]
