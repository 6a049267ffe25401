"""Template filling to OFD: the same two templates as eseal/pdf_templates.py (证明 certificate on A4, 电子证照
licence on landscape A5), drawn with eseal/ofd.py, ending with the keyword （盖章） where the seal goes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from eseal import ofd
from eseal.pdf_templates import LICENCE_FIELDS, SEAL_KEYWORD, check_fields, wrap

__all__ = ["SEAL_KEYWORD", "render"]


def render(template: str, fields: Mapping[str, str]) -> bytes:
    check_fields(template, fields)
    page = _certificate(fields) if template == "certificate" else _licence(fields)
    return ofd.build([page], title=fields.get("title", "证明" if template == "certificate" else "电子证照"))


def _certificate(f: Mapping[str, str]) -> ofd.PageSpec:
    w, _h = 210.0, 297.0
    texts = [ofd.Text(f.get("title", "证明"), w / 2, 45, 9.2, align="centre")]
    y = 65.0
    if f.get("to"):
        texts.append(ofd.Text(f"{f['to']}：", 25, y, 4.9))
        y += 10.5
    for line in wrap(f.get("body", ""), 30):
        texts.append(ofd.Text(line, 35, y, 4.9))
        y += 8.5
    y += 14
    right = w - 32
    texts.append(ofd.Text(f.get("issuer", ""), right, y, 4.9, align="right"))
    texts.append(ofd.Text(f.get("date", dt.date.today().strftime("%Y年%m月%d日")), right, y + 9.2, 4.9, align="right"))
    texts.append(ofd.Text(SEAL_KEYWORD, right, y + 18.4, 4.9, align="right"))
    if f.get("number"):
        texts.append(ofd.Text(f"编号：{f['number']}", 25, 280, 3.2))
    return ofd.PageSpec(texts=texts, size=(w, 297.0))


def _licence(f: Mapping[str, str]) -> ofd.PageSpec:
    w, h = 210.0, 148.0
    texts = [ofd.Text(f.get("title", "电子证照"), w / 2, 25, 7.8, align="centre")]
    y = 43.0
    for key, label in LICENCE_FIELDS:
        texts.append(ofd.Text(f"{label}：{f.get(key, '')}", 25, y, 4.6))
        y += 9.9
    texts.append(ofd.Text(f.get("issuer", ""), w - 25, h - 28, 4.6, align="right"))
    texts.append(ofd.Text(SEAL_KEYWORD, w - 25, h - 20, 4.6, align="right"))
    border = ofd.Rect(8.5, 8.5, w - 17, h - 17, line_width=1.06, colour="184 26 26")
    return ofd.PageSpec(texts=texts, rects=[border], size=(w, h))
