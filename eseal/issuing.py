"""Documents the platform itself issues and seals (e.g. 无犯罪记录证明 for affairs): filled from a template, sealed
with the platform's official seal (苏州市公安局, created with its certificates on first use), kept under
`<var>/eseal/issued/<sha256>.pdf`; the caller gets the reference `eseal:<sha256>`."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from core.masking import mask_id_number
from core.problems import invalid
from core.resources import Resources
from eseal import appauth, ca, pdf_templates, pdfsign, repo, seals, signing
from eseal.models import SignPosition

PLATFORM_APP = "szt-platform"
PLATFORM_ORG = "苏州市公安局"
_LOCK = 7200902


async def platform_seal(res: Resources) -> str:
    """The code of the platform's published official seal, made once (advisory lock across replicas)."""
    async with res.db.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
        try:
            found = await conn.fetchval(
                "SELECT code FROM eseal.seals WHERE applicant = $1 AND status = 'published' LIMIT 1", PLATFORM_APP
            )
            if found:
                return str(found)
            await ca.ensure_cas(res)
            certs = [
                await ca.apply(
                    res,
                    subject_kind="org",
                    subject_name=PLATFORM_ORG,
                    algorithm=alg,
                    applicant=PLATFORM_APP,
                    real_name_verified=True,
                )
                for alg in ("SM2", "RSA", "EC")
            ]
            seal = await seals.apply(
                res,
                kind="official",
                name=PLATFORM_ORG,
                org_name=PLATFORM_ORG,
                region_code="320500",
                cert_ids=[c.id for c in certs],
                applicant=PLATFORM_APP,
            )
            await seals.review(res, seal.id, approve=True, reviewer="system")
            await seals.make(res, seal.id)
            await seals.register(res, seal.id, actor="system")
            seal = await seals.publish(res, seal.id, actor="system")
            if await repo.app(res.db, PLATFORM_APP) is None:
                await appauth.create_app(res, PLATFORM_APP, "苏证通平台", actor="system")
            await seals.grant(res, seal.id, "app", PLATFORM_APP, actor="system")
            return str(seal.code)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)


def _fields(template: str, params: dict[str, str]) -> dict[str, str]:
    if template == "no_criminal_record":
        return {
            "title": "无犯罪记录证明",
            "body": (
                f"兹证明{params.get('name', '')}（身份证号码 {mask_id_number(params.get('id_number', ''))}）"
                "在本辖区居住期间，经查询全国违法犯罪人员信息系统，未发现有犯罪记录。特此证明。"
            ),
            "issuer": PLATFORM_ORG,
            "number": params.get("apply_no", ""),
            "date": dt.datetime.now(dt.UTC).strftime("%Y年%m月%d日"),
        }
    raise invalid("template", "no_criminal_record")


async def issue_certificate(res: Resources, *, template: str, params: dict[str, str]) -> str:
    code = await platform_seal(res)
    pdf = pdf_templates.render("certificate", _fields(template, params))
    folder = res.settings.var_path / "eseal" / "issued"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        src, out = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
        src.write_bytes(pdf)
        await signing.sign_file(
            res,
            src,
            out,
            [SignPosition(seal_code=code, keyword=pdf_templates.SEAL_KEYWORD)],
            app_code=PLATFORM_APP,
            doc_name=f"{template}-{params.get('apply_no', '')}.pdf",
        )
        digest = pdfsign.digest_file(str(out))
        out.replace(folder / f"{digest}.pdf")
    return f"eseal:{digest}"


def issued_path(res: Resources, ref: str) -> Path | None:
    digest = ref.removeprefix("eseal:")
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        return None
    path = res.settings.var_path / "eseal" / "issued" / f"{digest}.pdf"
    return path if path.is_file() else None
