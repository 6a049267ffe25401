"""One place where affairs tells a person something: recorded here (the engine's own "what we told you") and sent
through `push.service.notify` (docs/contracts.md): the push inbox and every channel of the person."""

from __future__ import annotations

import logging
import uuid

from affairs import repo
from core.resources import Resources
from push import service as push_service

log = logging.getLogger("szt.affairs.notify")

# push knows case_status and appointment_reminder; the engine's other messages are registered here.
for _name, _title, _body in (
    ("appointment_booked", "预约成功", "您已预约“{service}”，{time} 在 {place} 办理。"),
    ("payment_paid", "缴费成功", "您已缴纳{item}费用 {amount} 元。"),
    ("move_car", "挪车提醒", "您的车辆 {plate} 停放在{location}影响他人通行，请尽快挪车。联系请拨 {relay}。"),
    ("move_car_status", "挪车进度", "车辆 {plate}：{status}。"),
    ("enterprise_request", "企业服务进度", "您单位的“{service}”服务申请状态：{status}。"),
):
    push_service.register_template(_name, _title, _body)


async def notify(
    res: Resources, person_id: str, *, template: str, params: dict[str, str], source: str, idempotency_key: str
) -> None:
    inserted = await repo.insert_notification(
        res.db, uuid.UUID(person_id), template, params, source, idempotency_key[:200]
    )
    if not inserted:
        return  # told already
    try:
        await push_service.notify(
            res, person_id, template=template, params=params, source=source, idempotency_key=idempotency_key
        )
    except Exception:  # the case moved on regardless; the record above stays
        log.exception("push notify failed", extra={"template": template})
