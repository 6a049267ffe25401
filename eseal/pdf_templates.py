"""Template filling: PDFs drawn from data with reportlab (wqy-zenhei, TrueType) before they are sealed.

Two templates: `certificate` (证明: title, addressee, body paragraphs, issuer, date) and `licence` (电子证照: a
bordered card of labelled fields). Both end with the keyword （盖章） where the issuer's seal goes, so
`SignPosition(keyword="（盖章）")` places it.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping

from reportlab.lib.pagesizes import A4, A5, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from core.problems import invalid

FONT_FILE = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
FONT = "wqy-zenhei"
SEAL_KEYWORD = "（盖章）"
TEMPLATES = ("certificate", "licence")
MAX_FIELD = 400


def _font() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, FONT_FILE))


def wrap(text: str, width_chars: int) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        while len(para) > width_chars:
            lines.append(para[:width_chars])
            para = para[width_chars:]
        lines.append(para)
    return lines


def check_fields(template: str, fields: Mapping[str, str]) -> None:
    """A known template and fields within their size (the same rules for the PDF and the OFD renderings)."""
    if template not in TEMPLATES:
        raise invalid("template", f"one of {TEMPLATES}")
    for key, value in fields.items():
        if len(value) > MAX_FIELD:
            raise invalid(f"fields.{key}", f"at most {MAX_FIELD} characters")


def render(template: str, fields: Mapping[str, str]) -> bytes:
    check_fields(template, fields)
    _font()
    buf = io.BytesIO()
    if template == "certificate":
        _certificate(buf, fields)
    else:
        _licence(buf, fields)
    return buf.getvalue()


def _certificate(buf: io.BytesIO, f: Mapping[str, str]) -> None:
    c = canvas.Canvas(buf, pagesize=A4)
    w, h = A4
    c.setTitle(f.get("title", "证明"))
    c.setFont(FONT, 26)
    c.drawCentredString(w / 2, h - 110, f.get("title", "证明"))
    c.setFont(FONT, 14)
    y = h - 170
    if f.get("to"):
        c.drawString(72, y, f"{f['to']}：")
        y -= 30
    for line in wrap(f.get("body", ""), 30):
        c.drawString(100, y, line)
        y -= 24
    y -= 40
    c.drawRightString(w - 90, y, f.get("issuer", ""))
    c.drawRightString(w - 90, y - 26, f.get("date", dt.date.today().strftime("%Y年%m月%d日")))
    c.drawRightString(w - 90, y - 52, SEAL_KEYWORD)
    if f.get("number"):
        c.setFont(FONT, 9)
        c.drawString(72, 50, f"编号：{f['number']}")
    c.showPage()
    c.save()


LICENCE_FIELDS = (
    ("holder", "持证人"),
    ("id_masked", "证件号码"),
    ("item", "许可事项"),
    ("valid", "有效期"),
    ("number", "证照编号"),
)


def _licence(buf: io.BytesIO, f: Mapping[str, str]) -> None:
    size = landscape(A5)
    c = canvas.Canvas(buf, pagesize=size)
    w, h = size
    c.setStrokeColorRGB(0.72, 0.1, 0.1)
    c.setLineWidth(3)
    c.rect(24, 24, w - 48, h - 48)
    c.setFont(FONT, 22)
    c.drawCentredString(w / 2, h - 70, f.get("title", "电子证照"))
    c.setFont(FONT, 13)
    y = h - 120
    for key, label in LICENCE_FIELDS:
        c.drawString(70, y, f"{label}：{f.get(key, '')}")
        y -= 28
    c.drawRightString(w - 70, 80, f.get("issuer", ""))
    c.drawRightString(w - 70, 56, SEAL_KEYWORD)
    c.showPage()
    c.save()
