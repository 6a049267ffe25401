"""Sealing PDFs: visible seal impressions with PAdES (RSA, pyhanko) or GB/T 38540 SM2 signatures.

Every private-key operation goes to the signing server through `SignerClient`; pyhanko only lays out the document.
Input and output are files: pyhanko's incremental writer copies the original and hashes the byte ranges in chunks,
so a large PDF is never held in memory whole.

SM2 signatures (our own, documented in README "Electronic seals"): the signature dictionary has
`/Filter /SZT.ESeal /SubFilter /GB.T38540.SES` and `/Contents` holds the DER SES_Signature (GB/T 38540 v4) whose
`dataHash` is SM3 over the `/ByteRange` bytes, exactly the bytes a PAdES signature covers; `/ESealCode` names the
seal. Verifiers that know neither filter ignore the field; ours checks it (eseal/pdfverify.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from asn1crypto import algos, x509
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, BoxConstraints, Margins, SimpleBoxLayoutRule
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.cms_embedder import PdfCMSEmbedder, SigAppearanceSetup, SigIOSetup, SigObjSetup
from pyhanko.sign.signers.pdf_byterange import SignatureObject
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from tongsuopy.crypto import hashes as _thashes

from core.crypto import sm3
from eseal import ses

RawSign = Callable[[bytes], Awaitable[bytes]]
CHUNK = 1024 * 1024
SM2_FILTER = "/SZT.ESeal"
SM2_SUBFILTER = "/GB.T38540.SES"


@dataclass(frozen=True)
class Placement:
    page: int  # 0-based
    x: float  # lower-left corner, PDF points
    y: float
    width: float = 119.0  # 42 mm
    height: float = 119.0

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (int(self.x), int(self.y), int(self.x + self.width), int(self.y + self.height))


class RemoteRSASigner(signers.Signer):
    """A pyhanko Signer whose RSA-SHA256 private-key operation happens in the signing server."""

    def __init__(self, cert: x509.Certificate, chain: Sequence[x509.Certificate], sign_digest: RawSign) -> None:
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs([cert, *chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
        )
        self._sign_digest = sign_digest

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(256)
        return await self._sign_digest(hashlib.sha256(data).digest())


def _image(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.convert("RGBA")


_LAYOUT = SimpleBoxLayoutRule(x_align=AxisAlignment.ALIGN_MID, y_align=AxisAlignment.ALIGN_MID, margins=Margins())


def _stamp_style(png: bytes | Image.Image) -> StaticStampStyle:
    img = png if isinstance(png, Image.Image) else _image(png)
    return StaticStampStyle(background=PdfImage(img), border_width=0, background_opacity=1.0, background_layout=_LAYOUT)


def add_cross_page_stamp(writer: IncrementalPdfFileWriter, png: bytes, *, height: float = 119.0) -> int:
    """骑缝章: the impression cut in vertical strips, one strip on the right edge of each page. Returns the pages."""
    img = _image(png)
    pages = int(writer.root["/Pages"]["/Count"])
    strip_w = max(1, img.width // pages)
    for ix in range(pages):
        strip = img.crop((ix * strip_w, 0, (ix + 1) * strip_w, img.height))
        mediabox = [float(v) for v in writer.find_page_for_modification(ix)[0].get_object()["/MediaBox"]]
        w = height * strip.width / img.height
        stamp = _stamp_style(strip).create_stamp(writer, BoxConstraints(width=int(w) or 1, height=int(height)), {})
        stamp.apply(ix, int(mediabox[2] - w), int((mediabox[3] - height) / 2))
    return pages


def _field(name: str, placement: Placement) -> fields.SigFieldSpec:
    return fields.SigFieldSpec(sig_field_name=name, on_page=placement.page, box=placement.box)


async def sign_pades(
    src: IO[bytes],
    out: IO[bytes],
    *,
    field_name: str,
    placement: Placement,
    seal_png: bytes,
    cert: bytes,
    chain: Sequence[bytes],
    sign_digest: RawSign,
    reason: str,
    cross_page: bool = False,
) -> None:
    """A PAdES B-B signature (ETSI.CAdES.detached) with the seal impression as the widget's appearance."""
    writer = IncrementalPdfFileWriter(src, strict=False)
    if cross_page:
        add_cross_page_stamp(writer, seal_png)
    signer = RemoteRSASigner(x509.Certificate.load(cert), [x509.Certificate.load(c) for c in chain], sign_digest)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    pdf_signer = signers.PdfSigner(
        meta, signer, stamp_style=_stamp_style(seal_png), new_field_spec=_field(field_name, placement)
    )
    await pdf_signer.async_sign_pdf(writer, output=out, bytes_reserved=16384)


def sm3_ranges(stream: IO[bytes], start: int, end: int, stop: int | None = None) -> bytes:
    """SM3 over [0, start) and [end, stop or EOF) of `stream`, read in chunks (the /Contents hole skipped)."""
    h = _thashes.Hash(_thashes.SM3())
    stream.seek(0)
    left = start
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            break
        h.update(chunk)
        left -= len(chunk)
    stream.seek(end)
    left = -1 if stop is None else stop - end
    while left != 0 and (chunk := stream.read(CHUNK if left < 0 else min(CHUNK, left))):
        h.update(chunk)
        left = left - len(chunk) if left > 0 else left
    return bytes(h.finalize())


async def sign_sm2(
    src: IO[bytes],
    out: IO[bytes],
    *,
    field_name: str,
    placement: Placement,
    seal_png: bytes,
    seal_der: bytes,
    seal_code: str,
    cert: bytes,
    sign_sm2: RawSign,
    cross_page: bool = False,
) -> bytes:
    """An SM2/SM3 signature carrying a GB/T 38540 SES_Signature. Returns the SES_Signature DER."""
    writer = IncrementalPdfFileWriter(src, strict=False)
    if cross_page:
        add_cross_page_stamp(writer, seal_png)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    embedder = PdfCMSEmbedder(new_field_spec=_field(field_name, placement))
    coroutine: Any = embedder.write_cms(field_name=field_name, writer=writer)
    next(coroutine)
    reserved = 2 * (len(seal_der) + len(cert) + 1024)
    sig_obj = SignatureObject(timestamp=now, bytes_reserved=reserved)
    sig_obj[generic.pdf_name("/Filter")] = generic.pdf_name(SM2_FILTER)
    sig_obj[generic.pdf_name("/SubFilter")] = generic.pdf_name(SM2_SUBFILTER)
    sig_obj[generic.pdf_name("/ESealCode")] = generic.pdf_string(seal_code)
    coroutine.send(
        SigObjSetup(
            sig_placeholder=sig_obj,
            appearance_setup=SigAppearanceSetup(style=_stamp_style(seal_png), timestamp=now, name=None),
        )
    )
    prepared, output = coroutine.send(SigIOSetup(md_algorithm="sha256", in_place=False, output=out))
    data_hash = sm3_ranges(output, prepared.reserved_region_start, prepared.reserved_region_end)
    tbs = ses.tbs_sign(seal_der, data_hash, now, f"{field_name}")
    signature = await sign_sm2(bytes(tbs.dump()))
    ses_der = ses.assemble_signature(tbs, cert, signature)
    coroutine.send(ses_der)
    return ses_der


def digest_file(path: str) -> str:
    """SHA-256 hex of a file, read in chunks (for the signing log)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sm3_hex(data: bytes) -> str:
    return sm3(data).hex()
