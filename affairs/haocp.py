"""The one client of the provincial 好差评 system (省级政务服务“好差评”系统, 001 §2.4.1.16.4), configured by
`Settings.haocp_url`. Reports are JSON with the national evaluation fields (docs/domains/haocp.md); every request is
signed per szt-biz/1 (affairs.signing, system `haocp`), and every report carries `serialNo`, the idempotency key the
system de-duplicates on, so the outbox (affairs.ratings) may resend it freely."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from affairs import signing
from core.resources import Resources

log = logging.getLogger("szt.affairs.haocp")
SYSTEM = "haocp"


class HaocpError(Exception):
    """The system did not take the report (down, refused, or unreachable); `retry` says whether resending helps."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class PartyRecord(msgspec.Struct):
    """What the system holds for one case (办件): its latest evaluation and the rectification state."""

    projectNo: str
    assessNumber: int
    alternate: int
    rectifyStatus: str = ""


class HaocpClient:
    def __init__(self, res: Resources) -> None:
        self.http = res.http
        self.base = res.settings.haocp_endpoint.rstrip("/")
        self.key = signing.system_key(res.settings.var_path, SYSTEM)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.base + path
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = signing.sign_headers(self.key, "szt", "POST", urlsplit(url).path, body)
        try:
            resp = await self.http.post(
                url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=5.0
            )
        except httpx.HTTPError as exc:
            raise HaocpError(f"unreachable: {type(exc).__name__}") from exc
        try:
            answer: dict[str, Any] = resp.json()
        except ValueError:
            answer = {}
        if resp.status_code >= 500 or resp.status_code == 429:
            raise HaocpError(f"{resp.status_code} {answer.get('msg', '')}".strip())
        if resp.status_code != 200 or str(answer.get("code")) != "0":
            log.warning("haocp refused a report", extra={"status": resp.status_code, "answer": str(answer)[:300]})
            raise HaocpError(f"refused: {answer.get('code')} {answer.get('msg', '')}", retry=False)
        return answer

    async def report(self, kind: str, serial_no: str, payload: dict[str, Any]) -> bool:
        """Deliver one report; True when the system already had it (a resend it de-duplicated)."""
        path = "/v1/evaluations" if kind == "evaluation" else "/v1/rectifications"
        answer = await self._post(path, {"serialNo": serial_no, kind: payload})
        return bool((answer.get("data") or {}).get("duplicate"))

    async def query(self, project_nos: list[str]) -> dict[str, PartyRecord]:
        """The system's records of these cases (办件编号), for reconciliation."""
        answer = await self._post("/v1/evaluations/query", {"projectNos": project_nos})
        rows = msgspec.convert(answer.get("data") or [], list[PartyRecord])
        return {r.projectNo: r for r in rows}
