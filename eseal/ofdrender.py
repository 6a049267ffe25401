"""An OFD page drawn to PNG with pillow: text objects (wqy-zenhei for every font), image objects, path outlines,
and the seal impressions of the document's signatures at their StampAnnot boundaries (clipped for 骑缝 strips).

Enough for the verification page's preview and for looking at where seals landed; not a conforming renderer
(no embedded fonts, gradients or clipping paths of page content).
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from eseal import ofd, ses

MAX_PIXELS = 4000 * 4000


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(ofd.FONT_FILE, max(4, px))


def _colour(value: str | None, default: tuple[int, int, int] = (0, 0, 0)) -> tuple[int, int, int]:
    parts = (value or "").split()
    if len(parts) >= 3:
        try:
            r, g, b = (max(0, min(255, int(float(p)))) for p in parts[:3])
            return r, g, b
        except ValueError:
            return default
    return default


def _path_points(data: str, scale: float, ox: float, oy: float) -> list[list[tuple[float, float]]]:
    """Polylines of an AbbreviatedData (M, L, C/Z close; curves as their end points)."""
    tokens = data.split()
    lines: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    i = 0
    arity = {"M": 2, "S": 2, "L": 2, "Q": 4, "B": 6, "A": 7}
    while i < len(tokens):
        op = tokens[i]
        if op in ("C", "Z"):
            if current:
                current.append(current[0])
            i += 1
            continue
        n = arity.get(op)
        if n is None:
            i += 1
            continue
        args = [float(t) for t in tokens[i + 1 : i + 1 + n]]
        i += 1 + n
        if len(args) < 2:
            break
        point = ((ox + args[-2]) * scale, (oy + args[-1]) * scale)
        if op in ("M", "S"):
            if len(current) > 1:
                lines.append(current)
            current = [point]
        else:
            current.append(point)
    if len(current) > 1:
        lines.append(current)
    return lines


def render_page(pkg: ofd.Package, index: int = 0, *, dpi: int = 96, stamps: bool = True) -> bytes:
    """The page as PNG at `dpi`."""
    pages = pkg.pages()
    if not 0 <= index < len(pages):
        raise ofd.OFDError(f"no page {index}")
    page = pages[index]
    scale = dpi / 25.4
    width, height = max(1, round(page.width * scale)), max(1, round(page.height * scale))
    if width * height > MAX_PIXELS:
        raise ofd.OFDError("page too large to render")
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    content = pkg.xml(page.path)
    for el in content.iter():
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == f"{ofd.OFD}PathObject":
            x, y, _, _ = ofd.box(el.get("Boundary"))
            stroke = el.find("ofd:StrokeColor", ofd.NSMAP)
            colour = _colour(stroke.get("Value") if stroke is not None else None)
            line_w = max(1, round(float(el.get("LineWidth", "0.353")) * scale))
            data = el.findtext("ofd:AbbreviatedData", default="", namespaces=ofd.NSMAP)
            for line in _path_points(data, scale, x, y):
                draw.line(line, fill=colour, width=line_w)
        elif tag == f"{ofd.OFD}ImageObject":
            data_bytes = pkg.media_file(el.get("ResourceID", ""))
            if data_bytes is None:
                continue
            x, y, w, h = ofd.box(el.get("Boundary"))
            _paste(canvas, data_bytes, (x, y, w, h), scale)
        elif tag == f"{ofd.OFD}TextObject":
            fill = el.find("ofd:FillColor", ofd.NSMAP)
            colour = _colour(fill.get("Value") if fill is not None else None)
            size = float(el.get("Size", "3.5"))
            font = _font(round(size * scale))
            bx, by, _, _ = ofd.box(el.get("Boundary"))
            a, _b, _c, _d, e, f = ofd._ctm(el)
            x = y = 0.0
            for code in el.iterfind("ofd:TextCode", ofd.NSMAP):
                x = float(code.get("X", x))
                y = float(code.get("Y", y))
                dx, dy = ofd.deltas(code.get("DeltaX")), ofd.deltas(code.get("DeltaY"))
                for i, ch in enumerate(code.text or ""):
                    px, py = (bx + a * x + e) * scale, (by + y + f) * scale
                    draw.text((px, py), ch, font=font, fill=colour, anchor="ls")
                    x += dx[i] if i < len(dx) else size
                    y += dy[i] if i < len(dy) else 0.0
    if stamps:
        for stamp in stamp_annots(pkg):
            if stamp.page_id == page.id and stamp.picture:
                _paste(canvas, stamp.picture, stamp.boundary, scale, clip=stamp.clip)
    out = io.BytesIO()
    canvas.save(out, "PNG", optimize=False)
    return out.getvalue()


def _paste(
    canvas: Image.Image,
    data: bytes,
    boundary: tuple[float, float, float, float],
    scale: float,
    clip: tuple[float, float, float, float] | None = None,
) -> None:
    try:
        opened = Image.open(io.BytesIO(data))
        opened.load()
    except (OSError, ValueError):
        return
    img: Image.Image = opened.convert("RGBA")
    x, y, w, h = boundary
    target = (max(1, round(w * scale)), max(1, round(h * scale)))
    img = img.resize(target)
    left, top = round(x * scale), round(y * scale)
    if clip is not None:
        cx, cy, cw, ch = clip
        crop = (round(cx * scale), round(cy * scale), round((cx + cw) * scale), round((cy + ch) * scale))
        img = img.crop(crop)
        left, top = left + crop[0], top + crop[1]
    canvas.paste(img, (left, top), img)


class Stamp:
    def __init__(
        self,
        page_id: str,
        boundary: tuple[float, float, float, float],
        clip: tuple[float, float, float, float] | None,
        picture: bytes | None,
    ) -> None:
        self.page_id, self.boundary, self.clip, self.picture = page_id, boundary, clip, picture


def stamp_annots(pkg: ofd.Package) -> list[Stamp]:
    """The StampAnnots of every signature, with the seal picture from its SignedValue.dat."""
    path = pkg.signatures_path()
    if path is None or path not in pkg.files:
        return []
    out: list[Stamp] = []
    for record in pkg.xml(path).iterfind("ofd:Signature", ofd.NSMAP):
        try:
            sig_path = pkg.resolve(record.get("BaseLoc", ""), path)
            sig = pkg.xml(sig_path)
            value_loc = sig.findtext("ofd:SignedValue", default="", namespaces=ofd.NSMAP)
            picture: bytes | None = None
            try:
                parsed = ses.parse_signature(pkg.read(pkg.resolve(value_loc, sig_path)))
                picture = parsed.seal.picture
            except (ofd.OFDError, ValueError):
                picture = None
            for annot in sig.iterfind("ofd:SignedInfo/ofd:StampAnnot", ofd.NSMAP):
                clip = annot.get("Clip")
                out.append(
                    Stamp(
                        annot.get("PageRef", ""),
                        ofd.box(annot.get("Boundary")),
                        ofd.box(clip) if clip else None,
                        picture,
                    )
                )
        except ofd.OFDError:
            continue
    return out
