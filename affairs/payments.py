"""Online payment (item 7): orders from the manifest's fee list, paid through WeChat Pay or Alipay, signed
notifications, refunds and the daily reconciliation that flags abnormal orders. Import through affairs.service."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from affairs import repo
from affairs import service as svc
from affairs.adapters import Alipay, WechatPay
from affairs.models import OrderIn, OrderView, Reconciliation, RefundIn
from affairs.notify import notify
from affairs.paykeys import aead_decrypt, apiv3_key
from core import audit, clock
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources

log = logging.getLogger("szt.affairs.pay")
PAY_CODE = "app-07"


def _view(r: Any, pay_params: dict[str, str] | None = None) -> OrderView:
    return OrderView(
        id=r["id"],
        out_trade_no=r["out_trade_no"],
        item=r["item"],
        amount_fen=r["amount_fen"],
        channel=r["channel"],
        status=r["status"],
        pay_params=pay_params or {},
        refunded_fen=r["refunded_fen"],
        abnormal=r["abnormal"],
    )


async def create_order(res: Resources, person_id: str, acr: str, req: OrderIn) -> OrderView:
    m = await svc.manifest(res, PAY_CODE, "payment")
    svc.require_assurance(m, acr)
    fee = next((f for f in m.fees if f["item"] == req.item), None)
    if fee is None:
        raise invalid("item", "one of: " + ", ".join(f["item"] for f in m.fees))
    now = datetime.now(UTC)
    out_trade_no = f"SZT{now:%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"
    row = await repo.insert_order(
        res.db,
        id=uuid.uuid4(),
        out_trade_no=out_trade_no,
        person_id=uuid.UUID(person_id),
        code=PAY_CODE,
        item=req.item,
        amount_fen=fee["amount_fen"],
        channel=req.channel,
    )
    base = f"{res.settings.base_url}/affairs/v1/pay/{req.channel}/notify"
    if req.channel == "wechat":
        params = await WechatPay(res).create(
            out_trade_no, f"出入境缴费-{req.item}", fee["amount_fen"], req.openid, base
        )
    else:
        params = await Alipay(res).create(out_trade_no, f"出入境缴费-{req.item}", fee["amount_fen"], base)
    return _view(row, params)


async def get_order(res: Resources, person_id: str, order_id: uuid.UUID) -> OrderView:
    row = await repo.get_order(res.db, order_id)
    if row is None or str(row["person_id"]) != person_id:
        raise not_found("order")
    return _view(row)


async def _paid(res: Resources, out_trade_no: str, trade_no: str, amount_fen: int, channel: str) -> None:
    row = await repo.mark_paid(res.db, out_trade_no, trade_no, amount_fen)
    if row is None:
        existing = await repo.order_by_trade_no(res.db, out_trade_no)
        if existing is None:
            log.warning("notification for an unknown order", extra={"out_trade_no": out_trade_no, "channel": channel})
        return  # repeated notification: paid already
    if row["status"] == "paid":
        await notify(
            res,
            str(row["person_id"]),
            template="payment_paid",
            params={"item": row["item"], "amount": f"{row['amount_fen'] / 100:.2f}"},
            source="affairs",
            idempotency_key=f"order:{row['id']}:paid",
        )


async def wechat_notify(res: Resources, headers: dict[str, str], body: bytes) -> bool:
    """True when the notification is genuine (and applied); False → answer 401 so WeChat retries/alerts."""
    text = body.decode("utf-8", "replace")
    if not WechatPay(res).verify(headers, text):
        return False
    doc = json.loads(text)
    if doc.get("event_type") != "TRANSACTION.SUCCESS":
        return True
    tx = json.loads(aead_decrypt(apiv3_key(res.settings.var_path), doc["resource"]))
    if tx.get("trade_state") == "SUCCESS":
        await _paid(res, tx["out_trade_no"], tx["transaction_id"], int(tx["amount"]["total"]), "wechat")
    return True


async def alipay_notify(res: Resources, params: dict[str, str]) -> bool:
    if not Alipay(res).verify(params):
        return False
    if params.get("trade_status") in ("TRADE_SUCCESS", "TRADE_FINISHED"):
        fen = round(float(params.get("total_amount", "0")) * 100)
        await _paid(res, params.get("out_trade_no", ""), params.get("trade_no", ""), fen, "alipay")
    return True


async def refund(res: Resources, person_id: str, order_id: uuid.UUID, req: RefundIn) -> OrderView:
    row = await repo.get_order(res.db, order_id)
    if row is None or str(row["person_id"]) != person_id:
        raise not_found("order")
    if row["status"] != "paid":
        raise ProblemError(409, "not-refundable", "Only a paid order is refunded", "仅已支付订单可退款", row["status"])
    out_refund_no = f"R{row['out_trade_no']}"
    if row["channel"] == "wechat":
        status = await WechatPay(res).refund(row["out_trade_no"], out_refund_no, row["amount_fen"], row["amount_fen"])
    else:
        status = await Alipay(res).refund(row["out_trade_no"], row["amount_fen"], out_refund_no)
    fresh = await repo.mark_refunded(res.db, order_id, "refunded" if status == "SUCCESS" else "refunding")
    await audit.record(
        res.db, actor=person_id, action="affairs.refund", target=row["out_trade_no"], detail={"reason": req.reason}
    )
    return _view(fresh or row)


async def reconcile(res: Resources, bill_date: date, channel: str) -> Reconciliation:
    """Compare the channel's bill of `bill_date` (Beijing day) with our orders; flag every difference."""
    start = clock.beijing_midnight(bill_date)
    ours = {r["out_trade_no"]: r for r in await repo.orders_of_day(res.db, channel, start, start + timedelta(days=1))}
    if channel == "wechat":
        bill = {b["out_trade_no"]: int(b["amount_fen"]) for b in await WechatPay(res).bill(bill_date.isoformat())}
    else:
        bill = {}
        for no, r in ours.items():  # Alipay: per-order query (its bill download is a zipped CSV behind a URL)
            try:
                q = await Alipay(res).query(no)
            except ProblemError:
                continue
            if q.get("trade_status") in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                bill[no] = round(float(q["total_amount"]) * 100)
            del r
    report: list[dict[str, Any]] = []
    matched = 0
    for no in sorted(set(ours) | set(bill)):
        mine, theirs = ours.get(no), bill.get(no)
        paid_here = mine is not None and mine["status"] in ("paid", "refunding", "refunded")
        if mine is None:
            reason = "unknown-order-at-channel"
        elif theirs is None and paid_here:
            reason = "paid-here-not-at-channel"
        elif theirs is not None and not paid_here:
            reason = "paid-at-channel-not-here"
        elif theirs is not None and mine is not None and theirs != mine["amount_fen"]:
            reason = "amount-mismatch"
        else:
            if theirs is not None:
                matched += 1
            continue
        report.append(
            {"out_trade_no": no, "reason": reason, "ours": mine["amount_fen"] if mine else None, "theirs": theirs}
        )
        if mine is not None:
            await repo.flag_order(res.db, no, reason)
    await repo.save_reconciliation(res.db, bill_date, channel, matched, len(report), report)
    return Reconciliation(bill_date.isoformat(), channel, matched, len(report), report)


async def get_reconciliation(res: Resources, bill_date: date, channel: str) -> Reconciliation:
    r = await repo.get_reconciliation(res.db, bill_date, channel)
    if r is None:
        raise not_found("reconciliation")
    return Reconciliation(bill_date.isoformat(), channel, r["matched"], r["abnormal"], list(r["report"]))
