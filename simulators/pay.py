"""Simulator of the two payment channels, in their shapes and signatures:

- WeChat Pay API v3 under /pay/v3/...: JSAPI order (`POST /v3/pay/transactions/jsapi` → prepay_id), query by
  out_trade_no, refund (`POST /v3/refund/domestic/refunds`), trade bill (`GET /v3/bill/tradebill` → download_url).
  Requests must carry `Authorization: WECHATPAY2-SHA256-RSA2048 ...` signed with the merchant key; answers and
  notifications carry Wechatpay-Timestamp/Nonce/Signature/Serial signed with the platform key; the notification's
  resource is AEAD_AES_256_GCM-encrypted with the APIv3 key.
- Alipay open API gateway `POST /pay/alipay/gateway.do`: alipay.trade.create / query / refund with RSA2 signed
  form parameters; answers `{"<method>_response": {...}, "sign": ...}`; asynchronous notifications as a signed form.

The payer's action is a control endpoint: `POST /pay/_sim/pay {out_trade_no, notify?, amount_fen?}`.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.params import Parameter
from msgspec import Meta

from affairs import paykeys
from core.clock import SHANGHAI
from core.problems import ProblemError
from core.settings import Settings

_AUTH = re.compile(r'(\w+)="([^"]*)"')
Req = Request[Any, Any, Any]


@dataclass
class Trade:
    channel: str
    out_trade_no: str
    amount_fen: int
    notify_url: str
    trade_no: str
    state: str = "NOTPAY"
    paid_fen: int = 0
    paid_at: datetime | None = None
    refunded: bool = False


class PayCommand(msgspec.Struct):
    out_trade_no: Annotated[str, Meta(max_length=40)]
    notify: bool = True
    amount_fen: int | None = None  # a payer-side amount other than the order's (for reconciliation tests)


class PayResult(msgspec.Struct):
    out_trade_no: str
    trade_no: str
    notified: int | None


def _handlers(settings: Settings) -> list[object]:
    var = settings.var_path
    trades: dict[str, Trade] = {}

    def platform_headers(body: str) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = paykeys.rsa2_sign(paykeys.private_key(var, "platform"), paykeys.wechat_message(ts, nonce, body))
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sig,
            "Wechatpay-Serial": "SIM-PLATFORM-1",
        }

    def answer(doc: dict[str, Any], status: int = 200) -> Response[bytes]:
        body = json.dumps(doc, ensure_ascii=False) if doc else ""
        return Response(body.encode(), status_code=status, media_type=MediaType.JSON, headers=platform_headers(body))

    async def check_merchant(request: Req) -> str:
        body = (await request.body()).decode()
        auth = request.headers.get("authorization", "")
        if not auth.startswith("WECHATPAY2-SHA256-RSA2048 "):
            raise ProblemError(401, "SIGN_ERROR", "Signature error", "签名错误", "no WECHATPAY2-SHA256-RSA2048")
        f = dict(_AUTH.findall(auth))
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        msg = paykeys.wechat_message(request.method, path, f.get("timestamp", ""), f.get("nonce_str", ""), body)
        if f.get("mchid") != paykeys.MCHID or not paykeys.rsa2_verify(
            paykeys.public_key(var, "merchant"), msg, f.get("signature", "")
        ):
            raise ProblemError(401, "SIGN_ERROR", "Signature error", "签名错误", "merchant signature invalid")
        return body

    @post("/v3/pay/transactions/jsapi", summary="WeChat Pay: JSAPI order", tags=["wechatpay"], status_code=200)
    async def jsapi(request: Req) -> Response[bytes]:
        doc = json.loads(await check_merchant(request))
        no = doc["out_trade_no"]
        if no not in trades:
            trades[no] = Trade(
                "wechat", no, int(doc["amount"]["total"]), doc["notify_url"], f"4200{secrets.token_hex(12)}"
            )
        return answer({"prepay_id": f"wx{secrets.token_hex(14)}"})

    @get("/v3/pay/transactions/out-trade-no/{no:str}", summary="WeChat Pay: query", tags=["wechatpay"])
    async def wx_query(request: Req, no: str) -> Response[bytes]:
        await check_merchant(request)
        t = trades.get(no)
        if t is None:
            return answer({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, 404)
        return answer(
            {
                "out_trade_no": no,
                "transaction_id": t.trade_no,
                "trade_state": t.state,
                "amount": {"total": t.amount_fen},
            }
        )

    @post("/v3/refund/domestic/refunds", summary="WeChat Pay: refund", tags=["wechatpay"], status_code=200)
    async def wx_refund(request: Req) -> Response[bytes]:
        doc = json.loads(await check_merchant(request))
        t = trades.get(doc["out_trade_no"])
        if t is None or t.state != "SUCCESS":
            return answer({"code": "RESOURCE_NOT_EXISTS", "message": "订单未支付"}, 400)
        t.refunded, t.state = True, "REFUND"
        return answer(
            {"refund_id": f"5030{secrets.token_hex(12)}", "out_refund_no": doc["out_refund_no"], "status": "SUCCESS"}
        )

    @get("/v3/bill/tradebill", summary="WeChat Pay: trade bill of a day", tags=["wechatpay"])
    async def tradebill(
        request: Req, bill_date: Annotated[str, Parameter(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    ) -> Response[bytes]:
        await check_merchant(request)
        return answer(
            {
                "hash_type": "SHA1",
                "hash_value": "",
                "download_url": f"{settings.simulators_url}/pay/v3/billdownload/file?token={bill_date}",
            }
        )

    @get("/v3/billdownload/file", summary="WeChat Pay: bill file (CSV)", tags=["wechatpay"], media_type=MediaType.TEXT)
    async def billfile(token: Annotated[str, Parameter(pattern=r"^\d{4}-\d{2}-\d{2}$")]) -> str:
        lines = ["`out_trade_no,`transaction_id,`amount_fen,`state"]
        for t in trades.values():
            if t.channel == "wechat" and t.paid_at and t.paid_at.astimezone(SHANGHAI).date().isoformat() == token:
                lines.append(f"`{t.out_trade_no},`{t.trade_no},`{t.paid_fen},`{t.state}")
        return "\n".join(lines) + "\n"

    def ali_answer(method: str, inner: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
        return {
            method.replace(".", "_") + "_response": inner,
            "sign": paykeys.rsa2_sign(paykeys.private_key(var, "platform"), raw),
        }

    @post("/alipay/gateway.do", summary="Alipay open API gateway", tags=["alipay"], status_code=200)
    async def gateway(request: Req) -> dict[str, Any]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        method = form.get("method", "")
        if not paykeys.rsa2_verify(
            paykeys.public_key(var, "merchant"), paykeys.alipay_content(form), form.get("sign", "")
        ):
            return ali_answer(
                method,
                {
                    "code": "40002",
                    "msg": "Invalid Arguments",
                    "sub_code": "isv.invalid-signature",
                    "sub_msg": "验签出错",
                },
            )
        biz = json.loads(form.get("biz_content", "{}"))
        no = biz.get("out_trade_no", "")
        if method == "alipay.trade.create":
            if no not in trades:
                trades[no] = Trade(
                    "alipay",
                    no,
                    round(float(biz["total_amount"]) * 100),
                    form.get("notify_url", ""),
                    f"2026{secrets.token_hex(10)}",
                )
            return ali_answer(
                method, {"code": "10000", "msg": "Success", "out_trade_no": no, "trade_no": trades[no].trade_no}
            )
        t = trades.get(no)
        if t is None:
            return ali_answer(
                method,
                {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"},
            )
        if method == "alipay.trade.query":
            status = {"NOTPAY": "WAIT_BUYER_PAY", "SUCCESS": "TRADE_SUCCESS", "REFUND": "TRADE_CLOSED"}[t.state]
            return ali_answer(
                method,
                {
                    "code": "10000",
                    "msg": "Success",
                    "out_trade_no": no,
                    "trade_no": t.trade_no,
                    "trade_status": status,
                    "total_amount": f"{t.paid_fen / 100:.2f}",
                },
            )
        if method == "alipay.trade.refund":
            if t.state != "SUCCESS":
                return ali_answer(
                    method,
                    {
                        "code": "40004",
                        "msg": "Business Failed",
                        "sub_code": "ACQ.TRADE_STATUS_ERROR",
                        "sub_msg": "交易状态不合法",
                    },
                )
            t.state, t.refunded = "REFUND", True
            return ali_answer(
                method,
                {
                    "code": "10000",
                    "msg": "Success",
                    "out_trade_no": no,
                    "fund_change": "Y",
                    "refund_fee": biz.get("refund_amount", ""),
                },
            )
        return ali_answer(
            method,
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.METHOD_NOT_SUPPORTED", "sub_msg": method},
        )

    @post(
        "/_sim/pay",
        summary="Control: the payer pays an order; the channel notifies the merchant",
        tags=["sim"],
        status_code=200,
    )
    async def pay(data: PayCommand) -> PayResult:
        t = trades.get(data.out_trade_no)
        if t is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no such order")
        t.state, t.paid_fen, t.paid_at = "SUCCESS", data.amount_fen or t.amount_fen, datetime.now(UTC)
        if not data.notify:
            return PayResult(t.out_trade_no, t.trade_no, None)
        async with httpx.AsyncClient(timeout=10) as client:
            if t.channel == "wechat":
                tx = {
                    "out_trade_no": t.out_trade_no,
                    "transaction_id": t.trade_no,
                    "trade_state": "SUCCESS",
                    "amount": {"total": t.paid_fen, "payer_total": t.paid_fen, "currency": "CNY"},
                    "success_time": t.paid_at.isoformat(),
                }
                resource = paykeys.aead_encrypt(paykeys.apiv3_key(var), json.dumps(tx).encode(), b"transaction")
                doc = {
                    "id": secrets.token_hex(16),
                    "create_time": t.paid_at.isoformat(),
                    "event_type": "TRANSACTION.SUCCESS",
                    "resource_type": "encrypt-resource",
                    "resource": resource,
                    "summary": "支付成功",
                }
                body = json.dumps(doc)
                r = await client.post(
                    t.notify_url, content=body, headers={**platform_headers(body), "Content-Type": "application/json"}
                )
            else:
                params = {
                    "notify_time": t.paid_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                    "notify_type": "trade_status_sync",
                    "notify_id": secrets.token_hex(16),
                    "app_id": paykeys.ALIPAY_APP_ID,
                    "charset": "utf-8",
                    "version": "1.0",
                    "trade_no": t.trade_no,
                    "out_trade_no": t.out_trade_no,
                    "trade_status": "TRADE_SUCCESS",
                    "total_amount": f"{t.paid_fen / 100:.2f}",
                    "sign_type": "RSA2",
                }
                params["sign"] = paykeys.rsa2_sign(paykeys.private_key(var, "platform"), paykeys.alipay_content(params))
                r = await client.post(t.notify_url, data=params)
        return PayResult(t.out_trade_no, t.trade_no, r.status_code)

    return [jsapi, wx_query, wx_refund, tradebill, billfile, gateway, pay]


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("pay", "WeChat Pay v3 and Alipay payment channels", settings, _handlers(settings))
