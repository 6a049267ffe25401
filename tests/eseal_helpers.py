"""Shared set-up of the eseal tests: a bureau with SM2, RSA and ECDSA P-256 certificates, a published seal, an app."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from core.resources import Resources
from eseal import appauth, ca, seals
from eseal.models import Certificate, Seal, SealKind

FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
OUT = Path(__file__).resolve().parent.parent / "test-output"


@dataclass
class Bureau:
    org: str
    sm2: Certificate
    rsa: Certificate
    seal: Seal
    ec: Certificate
    app_code: str
    app_secret: str


async def bureau(res: Resources, org: str = "苏州市公安局", kind: SealKind = "official") -> Bureau:
    await ca.ensure_cas(res)
    sm2 = await ca.apply(res, subject_kind="org", subject_name=org, subject_org=org, real_name_verified=True)
    rsa = await ca.apply(
        res, subject_kind="org", subject_name=org, subject_org=org, algorithm="RSA", real_name_verified=True
    )
    ec = await ca.apply(
        res, subject_kind="org", subject_name=org, subject_org=org, algorithm="EC", real_name_verified=True
    )
    seal = await seals.apply(
        res,
        kind=kind,
        name=org,
        org_name=org,
        region_code="320500",
        cert_ids=[sm2.id, rsa.id, ec.id],
    )
    await seals.review(res, seal.id, approve=True, reviewer="admin")
    await seals.make(res, seal.id)
    await seals.register(res, seal.id, actor="admin")
    seal = await seals.publish(res, seal.id, actor="admin")
    code = f"app-{uuid.uuid4().hex[:8]}"
    secret = await appauth.create_app(res, code, "测试业务系统", actor="admin", secret=secrets.token_hex(32))
    await seals.grant(res, seal.id, "app", code, actor="admin")
    return Bureau(org, sm2, rsa, seal, ec, code, secret)


def make_pdf(path: Path, pages: int = 1, lines: tuple[str, ...] = ()) -> Path:
    if "wqy" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("wqy", FONT))
    c = canvas.Canvas(str(path))
    for p in range(pages):
        c.setFont("wqy", 14)
        c.drawString(72, 760, f"苏州市公安局 证明 第{p + 1}页")
        y = 720
        for line in lines:
            c.drawString(72, y, line)
            y -= 18
        c.showPage()
    c.save()
    return path


def flip_byte(src: Path, dst: Path) -> None:
    """Change one byte inside the signed part: a letter of reportlab's header comment (parsers skip it)."""
    data = bytearray(src.read_bytes())
    at = data.index(b"ReportLab Generated")
    data[at] ^= 0x20
    dst.write_bytes(bytes(data))
