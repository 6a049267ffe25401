"""The 亮证 card image: the holder's licence data, a diagonal watermark naming the purpose and time (so a screenshot
is useless elsewhere), and the verification QR drawn last on a white quiet zone so the watermark never hides it.
Pure: PIL only, no I/O beyond the font file."""

from __future__ import annotations

import functools
import io

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
WIDTH, HEIGHT = 1000, 620
_HEADER = {"id_card": (0, 94, 166), "driving_licence": (20, 120, 80), "residence_permit": (170, 70, 20)}


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT, size)


def _watermark(text: str) -> Image.Image:
    # Drawn large then rotated, so the tiled text crosses the whole card diagonally.
    side = int((WIDTH**2 + HEIGHT**2) ** 0.5) + 40
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(30)
    step_x = int(draw.textlength(text, font=font)) + 80
    for row, y in enumerate(range(0, side, 110)):
        for x in range(-step_x + (row % 2) * step_x // 2, side, step_x):
            draw.text((x, y), text, font=font, fill=(200, 30, 30, 70))
    rotated = layer.rotate(28, resample=Image.Resampling.BICUBIC)
    left, top = (side - WIDTH) // 2, (side - HEIGHT) // 2
    return rotated.crop((left, top, left + WIDTH, top + HEIGHT))


def _qr(text: str, size: int) -> Image.Image:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=6, border=3)
    qr.add_data(text)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    return img.resize((size, size), Image.Resampling.NEAREST)


def render(*, kind: str, title: str, rows: list[tuple[str, str]], watermark: str, qr_text: str, footer: str) -> bytes:
    card = Image.new("RGBA", (WIDTH, HEIGHT), (250, 248, 240, 255))
    draw = ImageDraw.Draw(card)
    draw.rectangle((0, 0, WIDTH, 90), fill=(*_HEADER.get(kind, (60, 60, 60)), 255))
    draw.text((36, 22), f"{title}（电子证照）", font=_font(40), fill="white")
    draw.text((WIDTH - 220, 34), "苏证通 · 亮证", font=_font(26), fill="white")
    y = 130
    for label, value in rows:
        draw.text((40, y), label, font=_font(26), fill=(110, 110, 110))
        draw.text((200, y), value, font=_font(30), fill=(20, 20, 20))
        y += 56
    draw.text((40, HEIGHT - 50), footer, font=_font(20), fill=(110, 110, 110))
    card = Image.alpha_composite(card, _watermark(watermark))
    qr_size = 300
    qr_box = (WIDTH - qr_size - 40, 130)
    card.paste(_qr(qr_text, qr_size), qr_box)
    ImageDraw.Draw(card).text(
        (qr_box[0] + 40, qr_box[1] + qr_size + 12), "扫码核验 · 有效期3分钟", font=_font(22), fill=(60, 60, 60)
    )
    out = io.BytesIO()
    card.convert("RGB").save(out, format="PNG", optimize=True)
    return out.getvalue()
