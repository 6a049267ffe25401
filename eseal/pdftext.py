"""Where a keyword sits on a PDF page, from pypdf's text visitor (text pieces with their matrices).

The pieces of a page are joined with whitespace dropped, so a keyword broken across lines (or split into several
show-text operators) is still found; its position is the first character's, advanced within its piece by the
font size per character (CJK glyphs are one em wide; good enough to centre a seal on the word).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from pypdf import PdfReader


@dataclass(frozen=True)
class Hit:
    page: int
    x: float
    y: float
    font_size: float


def _pieces(page: Any) -> list[tuple[str, float, float, float]]:
    out: list[tuple[str, float, float, float]] = []

    def visit(text: str, cm: Sequence[float], tm: Sequence[float], _font: Any, size: float) -> None:
        if not text or not text.strip():
            return
        x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
        y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
        scale = (tm[0] ** 2 + tm[1] ** 2) ** 0.5 or 1.0
        out.append((text, x, y, size * scale))

    page.extract_text(visitor_text=visit)
    return out


def find_keyword(src: IO[bytes], keyword: str, *, pages: int | None = None) -> list[Hit]:
    """Every occurrence of `keyword` (whitespace ignored), in page order."""
    needle = "".join(keyword.split())
    if not needle:
        return []
    reader = PdfReader(src)
    hits: list[Hit] = []
    for page_no, page in enumerate(reader.pages):
        if pages is not None and page_no >= pages:
            break
        chars: list[tuple[str, float, float, float]] = []  # one entry per non-space character
        for text, x, y, size in _pieces(page):
            advance = 0
            for ch in text:
                if ch.isspace():
                    advance += 1
                    continue
                chars.append((ch, x + advance * size * (1.0 if ord(ch) > 0x2E80 else 0.5), y, size))
                advance += 1
        joined = "".join(c[0] for c in chars)
        start = joined.find(needle)
        while start >= 0:
            _, x, y, size = chars[start]
            hits.append(Hit(page_no, x, y, size))
            start = joined.find(needle, start + 1)
    return hits
