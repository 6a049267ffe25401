"""QR rendering for identity codes (PNG for apps, SVG for the web).

Codes are encoded as a single alphanumeric-mode segment at error-correction level M. The version is picked by
``qrcode`` but capped at 10: beyond that the modules get too small for cheap scanners reading a phone screen, so
text that needs more is refused rather than rendered.
"""

from __future__ import annotations

import functools
import io

import qrcode
import qrcode.constants
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathFillImage
from qrcode.util import MODE_ALPHA_NUM, QRData

__all__ = ["ERROR_CORRECTION", "MAX_QR_VERSION", "QRTooLargeError", "qr_version", "render_png", "render_svg"]

ERROR_CORRECTION = qrcode.constants.ERROR_CORRECT_M
MAX_QR_VERSION = 10


class QRTooLargeError(ValueError):
    """The text would need a QR version above :data:`MAX_QR_VERSION` at level M."""


def _alphanumeric(text: str) -> QRData:
    # Forcing the mode (instead of qrcode's per-chunk optimiser) keeps one predictable segment; QRData raises
    # ValueError when the text has characters outside the QR alphanumeric set (e.g. lowercase).
    data = QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM)
    if data.mode != MODE_ALPHA_NUM:  # pragma: no cover - QRData keeps the mode it is given
        raise ValueError("text is not QR alphanumeric")
    return data


def _build(text: str, *, box_size: int = 10, border: int = 4) -> qrcode.QRCode:
    if not text.isascii():
        raise ValueError("text is not QR alphanumeric")
    qr = qrcode.QRCode(version=None, error_correction=ERROR_CORRECTION, box_size=box_size, border=border)
    qr.add_data(_alphanumeric(text))
    qr.make(fit=True)
    if qr.version > MAX_QR_VERSION:
        raise QRTooLargeError(f"text needs QR version {qr.version} at level M; at most {MAX_QR_VERSION} allowed")
    return qr


def qr_version(text: str) -> int:
    """The QR version :func:`render_png` / :func:`render_svg` would use for ``text``.

    Only the capacity tables are consulted (`best_fit`); building the matrix costs ~10 ms, which made issuing a
    code 30 times slower when this was computed by rendering."""
    _alphanumeric(text)  # refuses characters outside the alphanumeric set, as rendering would
    version = _version_for_length(len(text))
    if version > MAX_QR_VERSION:
        raise QRTooLargeError(f"text needs QR version {version} at level M; at most {MAX_QR_VERSION} allowed")
    return version


@functools.lru_cache(maxsize=64)
def _version_for_length(length: int) -> int:
    # In alphanumeric mode at a fixed error-correction level the version depends on the length alone.
    qr = qrcode.QRCode(version=None, error_correction=ERROR_CORRECTION)
    qr.add_data(_alphanumeric("A" * length))
    return int(qr.best_fit())


def render_png(text: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """1-bit PNG, ``box_size`` pixels per module, ``border`` modules of quiet zone (4 is the standard minimum)."""
    qr = _build(text, box_size=box_size, border=border)
    image = qr.make_image(image_factory=PilImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def render_svg(text: str) -> str:
    """Standalone SVG document with one ``<path>``; the white background keeps it scannable in dark mode."""
    qr = _build(text)
    image = qr.make_image(image_factory=SvgPathFillImage)
    return image.to_string(encoding="unicode")
