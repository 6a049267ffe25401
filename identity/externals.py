"""Clients of the external parties identity depends on: the CTID real-person check and the SMS gateway.
One class each, configured by URL; the simulators speak the same shapes."""

from __future__ import annotations

import logging
import uuid

import httpx
import msgspec

from core.problems import ProblemError

log = logging.getLogger("szt.identity.externals")


class FaceCheck(msgspec.Struct):
    result: str  # pass | not_same_person | not_live | mismatch
    similarity: float
    message: str


def _unavailable(party: str, party_zh: str) -> ProblemError:
    return ProblemError(
        503,
        f"{party}-unavailable",
        f"The {party.upper()} service is unavailable; try again later",
        f"{party_zh}服务暂不可用，请稍后再试",
        headers={"Retry-After": "30"},
    )


class CtidClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/ctid/v1/verify"

    async def verify(self, *, name: str, id_number: str, capture: str) -> FaceCheck:
        body = {"biz_seq": uuid.uuid4().hex, "name": name, "id_number": id_number, "capture": capture}
        try:
            resp = await self.http.post(self.url, json=body, timeout=8.0)
        except httpx.HTTPError as exc:
            log.warning("ctid unreachable", extra={"error": type(exc).__name__})
            raise _unavailable("ctid", "实人认证") from exc
        if resp.status_code == 400:
            raise ProblemError(
                400, "validation", "Invalid request", "请求参数无效", "face capture is not valid", field="face_capture"
            )
        if resp.status_code != 200:
            log.warning("ctid failed", extra={"status": resp.status_code})
            raise _unavailable("ctid", "实人认证")
        return msgspec.convert(resp.json(), FaceCheck, strict=False)


class SmsClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/sms/v1/messages"

    async def send(self, *, phone: str, template: str, params: dict[str, str]) -> str:
        body = {"phone": phone, "template": template, "params": params, "sign_name": "苏证通"}
        try:
            resp = await self.http.post(self.url, json=body, timeout=5.0)
        except httpx.HTTPError as exc:
            raise _unavailable("sms", "短信") from exc
        if resp.status_code != 200:
            log.warning("sms gateway failed", extra={"status": resp.status_code})
            raise _unavailable("sms", "短信")
        message_id: str = resp.json().get("message_id", "")
        return message_id
