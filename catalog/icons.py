"""App icons: a PNG checked by its content, resized to the standard sizes, stored on disk under its digest."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from catalog.models import ICON_SIZES
from core.problems import invalid

MAX_BYTES = 512 * 1024
MIN_SIDE = 96
MAX_SIDE = 2048
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def icon_dir(var_path: Path) -> Path:
    return var_path / "catalog" / "icons"


def path_for(var_path: Path, digest: str, size: int) -> Path:
    return icon_dir(var_path) / digest[:2] / digest / f"{size}.png"


def url_for(base_url: str, digest: str, size: int) -> str:
    return f"{base_url}/bff/v1/catalog/icons/{digest}/{size}.png"


def store(var_path: Path, data: bytes) -> str:
    """Check `data` is a square-ish PNG of sensible size, write every standard size; returns the SHA-256 digest."""
    if len(data) > MAX_BYTES:
        raise invalid("icon", f"at most {MAX_BYTES // 1024} KB")
    if not data.startswith(PNG_MAGIC):
        raise invalid("icon", "not a PNG file (checked by content)")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # structure and CRCs; a truncated or forged file fails here
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG":
                raise invalid("icon", "not a PNG file (checked by content)")
            w, h = img.size
            if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
                raise invalid("icon", f"sides must be {MIN_SIDE}–{MAX_SIDE} px")
            if max(w, h) > 1.25 * min(w, h):
                raise invalid("icon", "must be (nearly) square")
            img.load()
            rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise invalid("icon", "not a readable PNG image") from exc
    digest = hashlib.sha256(data).hexdigest()
    for size in ICON_SIZES:
        target = path_for(var_path, digest, size)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        out = io.BytesIO()
        rgba.resize((size, size), Image.Resampling.LANCZOS).save(out, "PNG", optimize=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(out.getvalue())
        tmp.replace(target)  # readers never see half a file
    return digest


def generated(label: str, colour: tuple[int, int, int]) -> bytes:
    """A plain icon for the seeded apps: a rounded square in the business line's colour with one character."""
    from PIL import ImageDraw, ImageFont

    size = 192
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=40, fill=(*colour, 255))
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(
            "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 110
        )
    except OSError:
        font = ImageFont.load_default()
    draw.text((size / 2, size / 2), label[:1], fill=(255, 255, 255, 255), font=font, anchor="mm")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
