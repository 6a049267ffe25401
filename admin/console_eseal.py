"""Console pages of electronic seals (电子印章): statistics, seals (apply, review, make, register, publish,
suspend/resume, revoke, destroy, authorisations), certificates (review, suspend/resume, revoke, renew, CRLs) and the
hash-chained seal logs (search, CSV export). Everything goes through eseal.service and its modules, which keep the
state rules, the seal logs and the audit records; the operation-log middleware records each form post under its
`action`. Seals and certificates are the platform's (no organisation data scope): only roles holding the eseal
permissions see the menu."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from litestar import Response, get, post

from admin import charts, pages
from core.clock import SHANGHAI
from core.filters import time_range
from core.problems import ProblemError
from core.resources import Resources
from eseal import service as eseal
from eseal.ca import REASONS
from orgs.models import AdminPrincipal

ACTIVE = "/admin/console/eseal"
SEAL_KINDS = {"official": "公章", "contract": "合同专用章", "finance": "财务专用章", "personal": "个人签名章"}
SHAPES = {"round": "圆形", "oval": "椭圆形", "square": "方形", "upload": "上传图片"}
SEAL_STATES = {
    "applied": "已申请",
    "approved": "已审核",
    "rejected": "已驳回",
    "made": "已制作",
    "registered": "已备案",
    "published": "已发布",
    "suspended": "已暂停",
    "revoked": "已撤销",
    "destroyed": "已销毁",
}
CERT_STATES = {
    "applied": "已申请",
    "approved": "已审核",
    "rejected": "已驳回",
    "issued": "有效",
    "suspended": "已冻结",
    "revoked": "已吊销",
}
CERT_FORMS = {"cloud": "云证书", "ukey": "UKey"}
REASON_NAMES = {
    "key_compromise": "密钥泄露",
    "ca_compromise": "CA 泄露",
    "affiliation_changed": "单位变更",
    "superseded": "已被替代",
    "cessation_of_operation": "停止使用",
}
GRANTEE_KINDS = {"user": "用户", "app": "应用", "cert": "证书"}
LOG_FIELDS = ("kind", "action", "actor", "seal_code", "cert_serial", "doc_name", "doc_hash", "result", "ip")
# Actions of the detail pages: action -> (permission, the catalogue code of what the page says afterwards,
# admin.pages.NOTICES); the states each allows are eseal's rules (a refused one comes back as the page's error).
SEAL_ACTIONS: dict[str, tuple[str, str]] = {
    "approve": ("eseal.seal.review", "seal-approved"),
    "reject": ("eseal.seal.review", "seal-rejected"),
    "make": ("eseal.seal.make", "seal-made"),
    "register": ("eseal.seal.make", "seal-registered"),
    "publish": ("eseal.seal.make", "seal-published"),
    "suspend": ("eseal.seal.manage", "seal-suspended"),
    "resume": ("eseal.seal.manage", "seal-resumed"),
    "revoke": ("eseal.seal.manage", "seal-revoked"),
    "destroy": ("eseal.seal.manage", "seal-destroyed"),
}
CERT_ACTIONS: dict[str, tuple[str, str]] = {
    "approve": ("eseal.cert.manage", "cert-issued"),
    "reject": ("eseal.cert.manage", "cert-rejected"),
    "suspend": ("eseal.cert.manage", "cert-suspended"),
    "resume": ("eseal.cert.manage", "cert-resumed"),
    "revoke": ("eseal.cert.manage", "cert-revoked"),
    "renew": ("eseal.cert.manage", "cert-renewed"),
}
MAX_UPLOAD = 2 * 1024 * 1024
LOG_KINDS = {"sign": "签章", "verify": "验证", "cert": "证书", "seal": "印章"}


# The colour of a state's tag (base.html's tag classes): in use, stopped for now, ended.
TONES = {"published": "ok", "issued": "ok", "applied": "pending", "suspended": "pending", "revoked": "fail"}
TONES |= {"destroyed": "fail", "rejected": "fail"}


def _helpers() -> dict[str, Any]:
    return {
        "tone": lambda state: TONES.get(state, ""),
        "seal_kinds": SEAL_KINDS,
        "shapes": SHAPES,
        "seal_states": SEAL_STATES,
        "cert_states": CERT_STATES,
        "cert_forms": CERT_FORMS,
        "reasons": REASON_NAMES,
        "grantee_kinds": GRANTEE_KINDS,
        "log_kinds": LOG_KINDS,
    }


def _q(request: pages.Req, name: str, limit: int = 64) -> str | None:
    return (request.query_params.get(name) or "").strip()[:limit] or None


def _actor(p: AdminPrincipal) -> str:
    return f"admin:{p.username}"


@get("/console/eseal", opt={"permission": "eseal.read"}, **pages.NO_SCHEMA)
@pages.console_page
async def eseal_page(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "eseal.read")
    st = await eseal.stats(res)
    kind, status = _q(request, "kind", 16), _q(request, "status", 16)
    items, nxt = await eseal.search_seals(
        res,
        kind=kind if kind in SEAL_KINDS else None,
        status=status if status in SEAL_STATES else None,
        org_name=_q(request, "org_name", 40),
        code=_q(request, "code", 20),
        name=_q(request, "name", 40),
        cursor=_q(request, "cursor", 120),
        limit=30,
    )
    day = dt.datetime.now(SHANGHAI).date()
    days = [(day - dt.timedelta(days=i)).isoformat() for i in range(13, -1, -1)]
    series = [
        (dt.datetime.fromisoformat(d).replace(tzinfo=SHANGHAI), float(st.signatures_by_day.get(d, 0))) for d in days
    ]
    filters = {k: request.query_params.get(k, "")[:40] for k in ("kind", "status", "org_name", "code", "name")}
    return await pages.render(
        request,
        res,
        "eseal.html",
        ACTIVE,
        me=p,
        title="电子印章",
        st=st,
        seals=items,
        next_cursor=nxt,
        filters=filters,
        kind_chart=charts.bar_chart(
            "印章类型", [(SEAL_KINDS.get(k, k), float(v)) for k, v in sorted(st.seals_by_kind.items())]
        ),
        cert_chart=charts.bar_chart(
            "证书形态", [(CERT_FORMS.get(k, k), float(v)) for k, v in sorted(st.certificates_by_form.items())]
        ),
        seal_state_chart=charts.bar_chart(
            "印章状态", [(SEAL_STATES.get(k, k), float(v)) for k, v in sorted(st.seals_by_status.items())]
        ),
        cert_state_chart=charts.bar_chart(
            "证书状态", [(CERT_STATES.get(k, k), float(v)) for k, v in sorted(st.certificates_by_status.items())]
        ),
        sign_chart=charts.line_chart("近14天签章次数（每日）", [("签章", series)]),
        **_helpers(),
    )


@get("/console/eseal/seals/new", opt={"permission": "eseal.seal.apply"}, **pages.NO_SCHEMA)
@pages.console_page
async def seal_new_page(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "eseal.seal.apply")
    certs, _ = await eseal.list_certificates(res, status="issued", limit=100)
    return await pages.render(
        request, res, "eseal_new.html", ACTIVE, me=p, title="申请电子印章", certs=certs, **_helpers()
    )


@post("/console/eseal/seals", opt={"action": "eseal.seal.apply"}, **pages.NO_SCHEMA)
async def seal_apply(request: pages.Req, res: Resources) -> Response[Any]:
    target = f"{ACTIVE}/seals/new"
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD + 64 * 1024:
        return pages.back(target, error="印模图片不能超过 2 MB")
    p = await pages.poster(request, "eseal.seal.apply", target)
    if isinstance(p, Response):
        return p
    form = await request.form()
    kind, shape = str(form.get("kind") or ""), str(form.get("shape") or "round")
    if kind not in SEAL_KINDS:
        return pages.back(target, error="请选择印章类型")
    if shape not in ("round", "oval", "square", "upload"):
        return pages.back(target, error="请选择印模样式")
    upload: bytes | None = None
    image = form.get("image")
    if shape == "upload":
        if image is None or isinstance(image, str):
            return pages.back(target, error="请上传印模图片（JPG、PNG、GIF 或 BMP）")
        upload = await image.read()
    cert_ids: list[uuid.UUID] = []
    for raw in form.getall("cert_id", []) if hasattr(form, "getall") else []:  # none chosen: no list
        try:
            cert_ids.append(uuid.UUID(str(raw)))
        except ValueError:
            return pages.back(target, error="证书编号无效")
    try:
        seal = await eseal.seals.apply(
            res,
            kind=kind,  # type: ignore[arg-type]  # checked against SEAL_KINDS above
            name=str(form.get("name") or "")[:41],
            org_name=str(form.get("org_name") or "")[:41],
            shape="round" if shape == "upload" else shape,  # type: ignore[arg-type]  # the upload decides
            upload=upload,
            cert_ids=cert_ids,
            region_code=str(form.get("region_code") or "320000")[:6],
            applicant=_actor(p),
        )
    except ProblemError as exc:
        return pages.refused(target, exc)
    request.scope.setdefault("state", {})["op_target"] = str(seal.id)
    return pages.back(f"{ACTIVE}/seals/{seal.id}", notice="印章申请已提交，等待审核")


@get("/console/eseal/seals/{seal_id:uuid}", opt={"permission": "eseal.read"}, **pages.NO_SCHEMA)
async def seal_page(request: pages.Req, res: Resources, seal_id: uuid.UUID) -> Response[Any]:
    async def inner(request: pages.Req, res: Resources) -> Response[Any]:
        p = await pages.current_admin(request, "eseal.read")
        seal = await eseal.seals.get(res, pages.path_uuid(request, "seal_id"))
        try:
            png: str | None = base64.b64encode(await eseal.seals.image(res, seal.id)).decode()
        except ProblemError:
            png = None  # drawn when the seal is made
        certs, _ = await eseal.list_certificates(res, status="issued", limit=100)
        return await pages.render(
            request,
            res,
            "eseal_seal.html",
            ACTIVE,
            me=p,
            title=f"印章 {seal.name}",
            seal=seal,
            png=png,
            certs=certs,
            **_helpers(),
        )

    return await pages.show(request, res, inner)


Change = Callable[[str, str], Awaitable[Response[Any] | None]]


async def change_state(
    request: pages.Req,
    data: pages.Form,
    actions: dict[str, tuple[str, str]],
    subject: uuid.UUID,
    target: str,
    change: Change,
) -> Response[Any]:
    """A detail page's action: known, permitted (`actions`), recorded as the op-log target, then `change(action,
    actor)`; back to `target` with what the page says afterwards, with what `change` answers instead, or with the
    reason eseal refused."""
    if (elsewhere := await pages.admitted(request)) is not None:  # origin and CSRF token before anything else
        return elsewhere
    action = data.get("action", "")
    if action not in actions:
        return pages.back(target, error="未知操作")
    permission, done = actions[action]
    p = await pages.poster(request, permission, target)
    if isinstance(p, Response):
        return p
    request.scope.setdefault("state", {})["op_target"] = f"{subject}:{action}"
    try:
        instead = await change(action, _actor(p))
    except ProblemError as exc:
        return pages.refused(target, exc)
    return instead or pages.back(target, msg=done)


@post("/console/eseal/seals/{seal_id:uuid}/action", opt={"action": "eseal.seal.change"}, **pages.NO_SCHEMA)
async def seal_action(request: pages.Req, res: Resources, seal_id: uuid.UUID, data: pages.Form) -> Response[Any]:
    target = f"{ACTIVE}/seals/{seal_id}"

    async def change(action: str, actor: str) -> Response[Any] | None:
        if action in ("approve", "reject"):
            note = data.get("note", "").strip()[:200]
            if action == "reject" and not note:
                return pages.back(target, error="驳回时必须填写理由")
            await eseal.seals.review(res, seal_id, approve=action == "approve", reviewer=actor, note=note)
        elif action == "make":
            await eseal.seals.make(res, seal_id, actor=actor)
        else:
            await getattr(eseal.seals, action)(res, seal_id, actor=actor)
        return None

    return await change_state(request, data, SEAL_ACTIONS, seal_id, target, change)


@post("/console/eseal/seals/{seal_id:uuid}/grants", opt={"action": "eseal.seal.grant"}, **pages.NO_SCHEMA)
async def seal_grants(request: pages.Req, res: Resources, seal_id: uuid.UUID, data: pages.Form) -> Response[Any]:
    target = f"{ACTIVE}/seals/{seal_id}"
    p = await pages.poster(request, "eseal.seal.manage", target)
    if isinstance(p, Response):
        return p
    kind, grantee = data.get("kind", ""), data.get("grantee", "").strip()[:65]
    request.scope.setdefault("state", {})["op_target"] = f"{seal_id}:{kind}:{grantee}"
    try:
        if data.get("op") == "ungrant":
            await eseal.seals.ungrant(res, seal_id, kind, grantee, actor=_actor(p))
            return pages.back(target, notice="已取消授权")
        if kind == "bind":
            await eseal.seals.bind_certificate(res, seal_id, uuid.UUID(grantee), actor=_actor(p))
            return pages.back(target, notice="已绑定证书")
        await eseal.seals.grant(res, seal_id, kind, grantee, actor=_actor(p))
    except ValueError:
        return pages.back(target, error="证书编号无效")
    except ProblemError as exc:
        return pages.refused(target, exc)
    return pages.back(target, notice="已授权")


@get("/console/eseal/certificates", opt={"permission": "eseal.read"}, **pages.NO_SCHEMA)
@pages.console_page
async def certs_page(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "eseal.read")
    status, form = _q(request, "status", 16), _q(request, "form", 8)
    items, nxt = await eseal.list_certificates(
        res,
        status=status if status in CERT_STATES else None,
        form=form if form in CERT_FORMS else None,
        cursor=_q(request, "cursor", 120),
        limit=30,
    )
    return await pages.render(
        request,
        res,
        "eseal_certs.html",
        ACTIVE,
        me=p,
        title="数字证书",
        certs=items,
        next_cursor=nxt,
        filters={"status": status or "", "form": form or ""},
        **_helpers(),
    )


@post("/console/eseal/certificates", opt={"action": "eseal.cert.apply"}, **pages.NO_SCHEMA)
async def cert_apply(request: pages.Req, res: Resources, data: pages.Form) -> Response[Any]:
    """A cloud certificate (key made in the signing server) for an organisation or a person; reviewed on this page."""
    target = f"{ACTIVE}/certificates"
    p = await pages.poster(request, "eseal.cert.manage", target)
    if isinstance(p, Response):
        return p
    kind, algorithm, usage = data.get("subject_kind", ""), data.get("algorithm", ""), data.get("usage", "sign")
    if kind not in ("org", "person") or algorithm not in ("SM2", "RSA") or usage not in ("sign", "encrypt"):
        return pages.back(target, error="请选择主体类型、算法和用途")
    try:
        cert = await eseal.ca.apply(
            res,
            subject_kind=kind,  # type: ignore[arg-type]  # checked above
            subject_name=data.get("subject_name", "")[:65],
            subject_org=data.get("subject_org", "").strip()[:64],
            usage=usage,  # type: ignore[arg-type]
            algorithm=algorithm,  # type: ignore[arg-type]
            applicant=_actor(p),
        )
    except ProblemError as exc:
        return pages.refused(target, exc)
    request.scope.setdefault("state", {})["op_target"] = str(cert.id)
    return pages.back(target, notice="证书申请已提交，请审核签发")


@post("/console/eseal/certificates/{cert_id:uuid}/action", opt={"action": "eseal.cert.change"}, **pages.NO_SCHEMA)
async def cert_action(request: pages.Req, res: Resources, cert_id: uuid.UUID, data: pages.Form) -> Response[Any]:
    target = f"{ACTIVE}/certificates"

    async def change(action: str, actor: str) -> Response[Any] | None:
        if action in ("approve", "reject"):
            await eseal.ca.review(res, cert_id, approve=action == "approve", reviewer=actor)
        elif action == "revoke":
            reason = data.get("reason", "")
            if reason not in REASONS:
                return pages.back(target, error="请选择吊销原因")
            await eseal.ca.revoke(res, cert_id, actor=actor, reason=reason)
        elif action == "renew":
            await eseal.ca.renew(res, cert_id, actor=actor)
        else:
            await getattr(eseal.ca, action)(res, cert_id, actor=actor)
        return None

    return await change_state(request, data, CERT_ACTIONS, cert_id, target, change)


def _log_filters(request: pages.Req) -> dict[str, Any]:
    filters: dict[str, Any] = {k: _q(request, k) for k in LOG_FIELDS}
    # a date includes that whole day; core.filters refuses anything but ISO 8601 (a 400 problem naming the field)
    filters["since"], filters["until"] = time_range(_q(request, "since", 40), _q(request, "until", 40))
    return filters


@get("/console/eseal/logs", opt={"permission": "eseal.read"}, **pages.NO_SCHEMA)
@pages.console_page
async def logs_page(request: pages.Req, res: Resources) -> Response[Any]:
    p = await pages.current_admin(request, "eseal.read")
    try:
        page = await eseal.search_logs(res, _log_filters(request), limit=50, cursor=_q(request, "cursor", 20))
        error = ""
    except ProblemError as exc:
        page, error = None, f"{exc.title_zh}：{exc.detail or ''}"
    shown = {k: request.query_params.get(k, "")[:64] for k in (*LOG_FIELDS, "since", "until")}
    return await pages.render(
        request,
        res,
        "eseal_logs.html",
        ACTIVE,
        me=p,
        title="印章日志",
        page=page,
        filters=shown,
        fields=LOG_FIELDS,
        log_kinds=LOG_KINDS,
        query=urlencode({k: v for k, v in shown.items() if v}),
        broken=await eseal.verify_logs(res) if request.query_params.get("verify") else None,
        **({"error": error} if error else {}),  # type: ignore[arg-type]  # str into **ctx
    )


@get("/console/eseal/logs.csv", opt={"permission": "eseal.log.export"}, **pages.NO_SCHEMA)
@pages.console_page
async def logs_export(request: pages.Req, res: Resources) -> Response[Any]:
    await pages.current_admin(request, "eseal.log.export")
    body = await eseal.export_logs(res, _log_filters(request))
    return Response(
        body.encode("utf-8-sig"),  # with a BOM, so spreadsheet programs read the Chinese columns right
        media_type="text/csv",  # Litestar adds "; charset=utf-8"
        headers={"Content-Disposition": 'attachment; filename="eseal-logs.csv"', "Cache-Control": "no-store"},
    )


ROUTES: list[Any] = [
    eseal_page,
    seal_new_page,
    seal_apply,
    seal_page,
    seal_action,
    seal_grants,
    certs_page,
    cert_apply,
    cert_action,
    logs_page,
    logs_export,
]
