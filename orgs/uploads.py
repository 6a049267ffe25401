"""Uploaded credentials: the type is sniffed from the content (never the client's claim), the size capped,
the name sanitised; files are stored under SZT_VAR_DIR by id with their SM3 digest."""

from __future__ import annotations

import io
import os
import re
import unicodedata
import uuid
from pathlib import Path

from PIL import Image

from core.crypto import sm3
from core.problems import invalid

MAX_BYTES = 4 * 1024 * 1024
MAX_FILES = 5
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
_UNSAFE = re.compile(r"[^\w.\-()（）\u4e00-\u9fff]+")


def sniff(content: bytes) -> tuple[str, str] | None:
    """(media type, extension) from the magic bytes; images must also decode."""
    for magic, media, ext in _SIGNATURES:
        if content.startswith(magic):
            if media.startswith("image/"):
                try:
                    with Image.open(io.BytesIO(content)) as im:
                        im.verify()
                except Exception:
                    return None
            elif b"%%EOF" not in content[-1024:]:
                return None
            return media, ext
    return None


def sanitise(name: str) -> str:
    """Keep the last path component, drop control and unusual characters, cap the length."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip("._") or "document"
    return name[-100:]


class Checked:
    __slots__ = ("content", "content_type", "digest", "ext", "filename")

    def __init__(self, filename: str, content: bytes, content_type: str, ext: str) -> None:
        self.filename, self.content, self.content_type, self.ext = filename, content, content_type, ext
        self.digest = sm3(content).hex()


def check(filename: str, content: bytes, index: int) -> Checked:
    field = f"documents[{index}]"
    if len(content) == 0:
        raise invalid(field, "empty file")
    if len(content) > MAX_BYTES:
        raise invalid(field, f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    kind = sniff(content)
    if kind is None:
        raise invalid(field, "only PDF, PNG or JPEG files (judged by content)")
    return Checked(sanitise(filename), content, kind[0], kind[1])


def store(root: Path, application_id: uuid.UUID, doc_id: uuid.UUID, doc: Checked) -> str:
    folder = root / "orgs" / "documents" / str(application_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{doc_id}.{doc.ext}"
    tmp = folder / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(doc.content)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(folder / name)
    return f"{application_id}/{name}"


def path_of(root: Path, stored_name: str) -> Path:
    return root / "orgs" / "documents" / stored_name
