"""The speed-ups of eseal give the same answers as the slow paths they replace (no servers needed)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import pil_image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfStreamError

from eseal import impression, pdffast, pdfsign, pdfverify
from tests.eseal_helpers import make_pdf


def _value(obj: object) -> object:
    return bytes(obj) if isinstance(obj, generic.ByteStringObject) else str(obj)


@pytest.mark.parametrize(
    "raw",
    [
        b"<48656c6c6f> rest",
        b"<48 65\n6c\r\n6c\t6f\x00> rest",
        b"<4865A> rest",
        b"<> rest",
        b"<" + b"ab" * 20000 + b"> rest",
        b"<" + b"0f" * 8191 + b"\n" + b"e1" * 5000 + b">",
    ],
)
def test_fast_hex_reader_equals_pyhanko(raw: bytes) -> None:
    slow, fast = io.BytesIO(raw), io.BytesIO(raw)
    expected = pdffast._ORIGINAL(slow)
    got = pdffast.read_hex_string(fast)
    assert type(got) is type(expected)
    assert _value(got) == _value(expected)
    assert fast.tell() == slow.tell()


@pytest.mark.parametrize("raw", [b"<48 %c\n 65> rest", b"<48zz65> rest", b"<4865"])
def test_fast_hex_reader_defers_odd_input_to_pyhanko(raw: bytes) -> None:
    expected: object
    got: object
    try:
        expected = _value(pdffast._ORIGINAL(io.BytesIO(raw)))
    except PdfStreamError as exc:
        expected = type(exc)
    try:
        got = _value(pdffast.read_hex_string(io.BytesIO(raw)))
    except PdfStreamError as exc:
        got = type(exc)
    assert got == expected


def test_cached_impression_writes_the_same_image_as_pyhanko(tmp_path: Path) -> None:
    png = impression.render("苏州市公安局", "320500100000016")
    path = make_pdf(tmp_path / "in.pdf")
    with path.open("rb") as f:
        writer = IncrementalPdfFileWriter(f, strict=False)
        ours = pdfsign.write_impression(writer, png).get_object()
        theirs = pil_image(pdfsign._image(png), writer).get_object()
        assert pdfsign.encoded_impression(png) is pdfsign.encoded_impression(png)  # decoded once
        for key in ("/Width", "/Height", "/ColorSpace", "/BitsPerComponent", "/Filter"):
            assert ours[key] == theirs[key]
        assert ours.data == theirs.data
        assert ours["/SMask"].get_object().data == theirs["/SMask"].get_object().data
        assert ours["/SMask"].get_object()["/ColorSpace"] == "/DeviceGray"


async def test_verdict_cache_is_keyed_by_document_and_trust() -> None:
    pdfverify.clear_caches()
    trust = pdfverify.Trust(roots=[b"root"], intermediates=[], crls=[b"crl-1"])
    doc = b"%PDF-1.7 not really a PDF"
    first, second = await asyncio.gather(
        pdfverify.verify_stream(io.BytesIO(doc), trust), pdfverify.verify_stream(io.BytesIO(doc), trust)
    )
    assert first is second and not first.valid  # simultaneous requests share one verification
    assert await pdfverify.verify_stream(io.BytesIO(doc), trust) is first
    assert await pdfverify.verify_stream(io.BytesIO(doc + b" "), trust) is not first  # other bytes
    key = trust.key()
    trust.seals["X1"] = {"status": "published", "valid_to": None, "name": "n", "cert_serials": {"1"}}
    assert trust.key() != key
    suspended = trust.key()
    trust.seals["X1"]["status"] = "suspended"
    assert trust.key() != suspended
    renewed = pdfverify.Trust(roots=[b"root"], intermediates=[], crls=[b"crl-2"], seals=trust.seals)
    assert renewed.key() != trust.key() and renewed.anchors_key() != trust.anchors_key()
    assert await pdfverify.verify_stream(io.BytesIO(doc), renewed) is not first
