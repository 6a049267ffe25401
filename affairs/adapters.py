"""Clients of the external parties the handling engine talks to, one class each, configured by URL:
business systems (adapter protocol szt-biz/1), the Ministry platform, and the two payment channels."""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from affairs import paykeys, signing
from core import outbound
from core.problems import ProblemError
from core.resources import Resources

log = logging.getLogger("szt.affairs.adapters")
BILL_MAX_BYTES = 64 * 1_048_576


def _same_origin(url: str, base: str) -> bool:
    """Is `url` on the scheme, host and port of `base` (a URL we configured)?"""
    try:
        a, b = httpx.URL(url), httpx.URL(base)
    except httpx.InvalidURL:
        return False
    default = {"http": 80, "https": 443}
    return (a.scheme, a.host, a.port or default.get(a.scheme)) == (b.scheme, b.host, b.port or default.get(b.scheme))


def unavailable(what: str) -> ProblemError:
    return ProblemError(
        503, "upstream-unavailable", f"{what} unavailable", "业务系统暂不可用", f"{what} did not answer"
    )


async def signed_post(res: Resources, system: str, path: str, payload: dict[str, Any], *, base: str = "") -> Any:
    """POST a signed JSON body to `base + path` (default: the simulators) and return the decoded answer."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = signing.sign_headers(signing.system_key(res.settings.var_path, system), system, "POST", path, body)
    try:
        r = await res.http.post(
            (base or res.settings.simulators_url) + path,
            content=body,
            headers={**headers, "Content-Type": "application/json"},
            timeout=8.0,
        )
    except httpx.HTTPError as exc:
        log.warning("upstream failed", extra={"system": system, "path": path, "error": type(exc).__name__})
        raise unavailable(system) from exc
    if r.status_code >= 500:
        raise unavailable(system)
    if r.status_code >= 400:
        raise ProblemError(422, "upstream-refused", "Refused by the business system", "业务系统拒绝", r.text[:200])
    return r.json()


class BizClient:
    """szt-biz/1: submissions, supplements and withdrawals out; queries; status comes back by callback."""

    def __init__(self, res: Resources, system: str) -> None:
        self.res, self.system = res, system

    async def submit(self, payload: dict[str, Any]) -> str:
        answer = await signed_post(self.res, self.system, f"/biz/v1/{self.system}/submissions", payload)
        return str(answer["ref"])

    async def supplement(self, ref: str, payload: dict[str, Any]) -> None:
        await signed_post(self.res, self.system, f"/biz/v1/{self.system}/submissions/{ref}/supplements", payload)

    async def withdraw(self, ref: str) -> None:
        await signed_post(self.res, self.system, f"/biz/v1/{self.system}/submissions/{ref}/withdrawals", {})

    async def query(self, kind: str, params: dict[str, str]) -> dict[str, Any]:
        answer: dict[str, Any] = await signed_post(
            self.res, self.system, f"/biz/v1/{self.system}/queries", {"type": kind, "params": params}
        )
        return answer


async def mps_feedback(res: Resources, payload: dict[str, Any]) -> None:
    await signed_post(res, "mps", "/mps/v1/feedback", payload)


# ---------------------------------------------------------------- payment channels


class WechatPay:
    """WeChat Pay API v3 (JSAPI): requests signed with the merchant key (WECHATPAY2-SHA256-RSA2048)."""

    SCHEMA = "WECHATPAY2-SHA256-RSA2048"

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.base = res.settings.simulators_url + "/pay"

    def _auth(self, method: str, path: str, body: str) -> str:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = paykeys.rsa2_sign(
            paykeys.private_key(self.res.settings.var_path, "merchant"),
            paykeys.wechat_message(method, path, ts, nonce, body),
        )
        return (
            f'{self.SCHEMA} mchid="{paykeys.MCHID}",nonce_str="{nonce}",signature="{sig}",'
            f'timestamp="{ts}",serial_no="SZT-MERCHANT-1"'
        )

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False) if payload is not None else ""
        full = "/pay" + path
        try:
            r = await self.res.http.request(
                method,
                self.base + path,
                content=body.encode() if body else None,
                headers={"Authorization": self._auth(method, full, body), "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise unavailable("wechatpay") from exc
        if r.status_code >= 400:
            raise ProblemError(502, "pay-refused", "Payment channel refused", "支付渠道拒绝", r.text[:200])
        if not self.verify(dict(r.headers), r.text):
            raise ProblemError(502, "pay-bad-signature", "Payment channel answer not signed", "支付应答验签失败")
        answer: dict[str, Any] = r.json() if r.text else {}
        return answer

    def verify(self, headers: dict[str, str], body: str) -> bool:
        h = {k.lower(): v for k, v in headers.items()}
        msg = paykeys.wechat_message(h.get("wechatpay-timestamp", ""), h.get("wechatpay-nonce", ""), body)
        ts = h.get("wechatpay-timestamp", "")
        if not ts.isdigit() or abs(int(ts) - time.time()) > 300:
            return False
        return paykeys.rsa2_verify(
            paykeys.public_key(self.res.settings.var_path, "platform"), msg, h.get("wechatpay-signature", "")
        )

    async def create(
        self, out_trade_no: str, description: str, amount_fen: int, openid: str, notify_url: str
    ) -> dict[str, str]:
        answer = await self._call(
            "POST",
            "/v3/pay/transactions/jsapi",
            {
                "appid": paykeys.APPID,
                "mchid": paykeys.MCHID,
                "description": description,
                "out_trade_no": out_trade_no,
                "notify_url": notify_url,
                "amount": {"total": amount_fen, "currency": "CNY"},
                "payer": {"openid": openid or "o-sim-openid"},
            },
        )
        prepay = str(answer["prepay_id"])
        # What the mini program hands to wx.requestPayment, signed by the merchant.
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay}"
        pay_sign = paykeys.rsa2_sign(
            paykeys.private_key(self.res.settings.var_path, "merchant"),
            paykeys.wechat_message(paykeys.APPID, ts, nonce, package),
        )
        return {
            "appId": paykeys.APPID,
            "timeStamp": ts,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }

    async def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int) -> str:
        answer = await self._call(
            "POST",
            "/v3/refund/domestic/refunds",
            {
                "out_trade_no": out_trade_no,
                "out_refund_no": out_refund_no,
                "amount": {"refund": refund_fen, "total": total_fen, "currency": "CNY"},
            },
        )
        return str(answer["status"])

    async def bill(self, bill_date: str) -> list[dict[str, str]]:
        answer = await self._call("GET", f"/v3/bill/tradebill?bill_date={bill_date}")
        url = str(answer["download_url"])
        try:
            if _same_origin(url, self.base):
                text = (await self.res.http.get(url)).text
            else:  # a link elsewhere is only the channel's word: the outbound guard decides whether we go there
                text = (await outbound.get(self.res.settings, url, time_limit=30.0, max_bytes=BILL_MAX_BYTES)).text
        except (httpx.HTTPError, outbound.OutboundError) as exc:
            raise unavailable("wechatpay") from exc
        lines = text.strip().splitlines()
        head = [h.lstrip("`") for h in lines[0].split(",")] if lines else []
        return [dict(zip(head, (c.lstrip("`") for c in line.split(",")), strict=False)) for line in lines[1:]]


class Alipay:
    """Alipay open API gateway: form parameters signed RSA2 with the app key, answers signed by Alipay."""

    def __init__(self, res: Resources) -> None:
        self.res = res
        self.url = res.settings.simulators_url + "/pay/alipay/gateway.do"

    def verify(self, params: dict[str, str]) -> bool:
        return paykeys.rsa2_verify(
            paykeys.public_key(self.res.settings.var_path, "platform"),
            paykeys.alipay_content(params),
            params.get("sign", ""),
        )

    async def _call(self, method: str, biz: dict[str, Any], notify_url: str = "") -> dict[str, Any]:
        params = {
            "app_id": paykeys.ALIPAY_APP_ID,
            "method": method,
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "notify_url": notify_url,
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params = {k: v for k, v in params.items() if v}
        params["sign"] = paykeys.rsa2_sign(
            paykeys.private_key(self.res.settings.var_path, "merchant"), paykeys.alipay_content(params)
        )
        try:
            r = await self.res.http.post(self.url, data=params)
        except httpx.HTTPError as exc:
            raise unavailable("alipay") from exc
        doc = r.json()
        key = method.replace(".", "_") + "_response"
        inner = doc.get(key, {})
        raw = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
        if not paykeys.rsa2_verify(
            paykeys.public_key(self.res.settings.var_path, "platform"), raw, doc.get("sign", "")
        ):
            raise ProblemError(502, "pay-bad-signature", "Payment channel answer not signed", "支付应答验签失败")
        if inner.get("code") != "10000":
            raise ProblemError(
                502, "pay-refused", "Payment channel refused", "支付渠道拒绝", str(inner.get("sub_msg", ""))[:200]
            )
        answer: dict[str, Any] = inner
        return answer

    async def create(self, out_trade_no: str, subject: str, amount_fen: int, notify_url: str) -> dict[str, str]:
        answer = await self._call(
            "alipay.trade.create",
            {"out_trade_no": out_trade_no, "total_amount": f"{amount_fen / 100:.2f}", "subject": subject},
            notify_url,
        )
        return {"tradeNO": str(answer["trade_no"])}

    async def query(self, out_trade_no: str) -> dict[str, Any]:
        return await self._call("alipay.trade.query", {"out_trade_no": out_trade_no})

    async def refund(self, out_trade_no: str, refund_fen: int, out_request_no: str) -> str:
        answer = await self._call(
            "alipay.trade.refund",
            {
                "out_trade_no": out_trade_no,
                "refund_amount": f"{refund_fen / 100:.2f}",
                "out_request_no": out_request_no,
            },
        )
        return "SUCCESS" if answer.get("fund_change") == "Y" else "PROCESSING"
