"""Simulator of the Ministry of Public Security platform's no-criminal-record service: it pushes applications made
on the Ministry side into the province's interface (signed, szt-biz/1 headers with system "mps") and receives the
province's result through its feedback interface (signed the same way)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import msgspec
from litestar import Litestar, Request, get, post
from litestar.params import Parameter
from msgspec import Meta

from affairs import signing
from core.problems import ProblemError
from core.settings import Settings

PUSH_PATH = "/affairs/v1/mps/applications"


class PushCommand(msgspec.Struct):
    name: Annotated[str, Meta(min_length=1, max_length=30)]
    id_number: Annotated[str, Meta(min_length=18, max_length=18)]
    purpose: Annotated[str, Meta(min_length=1, max_length=100)] = "出国（境）"


class Pushed(msgspec.Struct):
    apply_no: str
    status_code: int
    body: str


class Feedback(msgspec.Struct):
    apply_no: str
    result: str
    certificate_ref: str = ""


class FeedbackSeen(msgspec.Struct):
    apply_no: str
    result: str
    certificate_ref: str
    received_at: datetime


def _handlers(settings: Settings) -> list[object]:
    received: dict[str, FeedbackSeen] = {}
    nonces: set[str] = set()

    @post("/v1/feedback", status_code=200, summary="Receive the province's result (signed)", tags=["mps"])
    async def feedback(request: Request[Any, Any, Any]) -> dict[str, str]:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        reason = signing.check(signing.system_key(settings.var_path, "mps"), headers, "POST", request.url.path, body)
        if reason is None and headers.get("x-szt-nonce", "") in nonces:
            reason = "replayed"
        if reason is not None:
            raise ProblemError(401, "bad-signature", "Request signature refused", "签名校验失败", reason)
        nonces.add(headers["x-szt-nonce"])
        fb = msgspec.json.decode(body, type=Feedback)
        received[fb.apply_no] = FeedbackSeen(fb.apply_no, fb.result, fb.certificate_ref, datetime.now(UTC))
        return {"code": "0", "msg": "ok"}

    @post("/_sim/applications", status_code=200, summary="Control: push one application to the province", tags=["sim"])
    async def push(data: PushCommand) -> Pushed:
        apply_no = f"MPS{datetime.now(UTC):%Y%m%d}{secrets.token_hex(5).upper()}"
        payload = {"apply_no": apply_no, "name": data.name, "id_number": data.id_number, "purpose": data.purpose}
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = signing.sign_headers(signing.system_key(settings.var_path, "mps"), "mps", "POST", PUSH_PATH, body)
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                settings.base_url + PUSH_PATH, content=body, headers={**headers, "Content-Type": "application/json"}
            )
        return Pushed(apply_no, r.status_code, r.text[:300])

    @get("/_sim/feedback", summary="Control: the feedback received for an application", tags=["sim"])
    async def seen(apply_no: Annotated[str, Parameter(max_length=40)]) -> FeedbackSeen:
        if apply_no not in received:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no feedback yet")
        return received[apply_no]

    return [feedback, push, seen]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("mps", "Ministry platform", settings, _handlers(settings))
