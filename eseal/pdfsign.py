"""Sealing PDFs: visible seal impressions with PAdES (RSA or ECDSA P-256, pyhanko) or GB/T 38540 SM2 signatures.

Every private-key operation goes to the signing server through `SignerClient`; pyhanko only lays out the document.
Input and output are files: pyhanko's incremental writer copies the original and hashes the byte ranges in chunks,
so a large PDF is never held in memory whole.

SM2 signatures (our own, documented in docs/domains/eseal.md): the signature dictionary has
`/Filter /SZT.ESeal /SubFilter /GB.T38540.SES` and `/Contents` holds the DER SES_Signature (GB/T 38540 v4) whose
`dataHash` is SM3 over the `/ByteRange` bytes, exactly the bytes a PAdES signature covers; `/ESealCode` names the
seal. Verifiers that know neither filter ignore the field; ours checks it (eseal/pdfverify.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from asn1crypto import algos, tsp, x509
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, BoxConstraints, Margins, SimpleBoxLayoutRule
from pyhanko.sign import attributes, fields, signers
from pyhanko.sign.signers.cms_embedder import PdfCMSEmbedder, SigAppearanceSetup, SigIOSetup, SigObjSetup
from pyhanko.sign.signers.pdf_byterange import SignatureObject
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from tongsuopy.crypto import hashes as _thashes

from core.crypto import sm3
from eseal import ses

RawSign = Callable[[bytes], Awaitable[bytes]]
_MECHANISM = {"rsa": "sha256_rsa", "ec": "sha256_ecdsa"}
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


class RemoteSigner(signers.Signer):
    """A pyhanko Signer whose RSA-SHA256 or ECDSA-SHA256 (P-256) private-key operation happens in the signing
    server; the mechanism follows the certificate's key."""

    def __init__(
        self,
        cert: x509.Certificate,
        chain: Sequence[x509.Certificate],
        sign_digest: RawSign,
        registry: SimpleCertificateStore | None = None,
    ) -> None:
        super().__init__(
            signing_cert=cert,
            cert_registry=registry or SimpleCertificateStore.from_certs([cert, *chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": _MECHANISM[cert.public_key.algorithm]}),
        )
        self._sign_digest = sign_digest
        self._dry_size = 256 if cert.public_key.algorithm == "rsa" else 72

    def _signed_attr_providers(self, *args: Any, **kwargs: Any) -> Any:
        for provider in super()._signed_attr_providers(*args, **kwargs):
            if type(provider) is attributes.SigningCertificateV2Provider:
                yield _SigningCertificateV2(provider.signing_cert)
            else:
                yield provider

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:
            return bytes(self._dry_size)
        return await self._sign_digest(hashlib.sha256(data).digest())


@functools.lru_cache(maxsize=256)
def _parsed_certs(cert: bytes, chain: tuple[bytes, ...]) -> tuple[x509.Certificate, SimpleCertificateStore]:
    """The signer's certificate and a registry of it and its chain, parsed and indexed once per certificate
    (building the registry was a sixth of a seal's CPU). Only read while signing."""
    # The chain only: pyhanko adds the signer's own certificate itself (it was embedded twice).
    return x509.Certificate.load(cert), SimpleCertificateStore.from_certs([x509.Certificate.load(c) for c in chain])


@functools.lru_cache(maxsize=256)
def _signing_certificate_v2_der(cert_der: bytes) -> bytes:
    from pyhanko.sign.general import as_signing_certificate_v2

    return bytes(as_signing_certificate_v2(x509.Certificate.load(cert_der)).dump())


class _SigningCertificateV2(attributes.SigningCertificateV2Provider):
    """The ESS signing-certificate-v2 attribute (hash + issuer/serial of the signer's certificate) built once per
    certificate and re-read from its DER each time (building it through asn1crypto was ~3 ms a seal)."""

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(_signing_certificate_v2_der(bytes(self.signing_cert.dump())))


def _image(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.convert("RGBA")


_LAYOUT = SimpleBoxLayoutRule(x_align=AxisAlignment.ALIGN_MID, y_align=AxisAlignment.ALIGN_MID, margins=Margins())


@functools.lru_cache(maxsize=128)
def encoded_impression(png: bytes) -> tuple[int, int, bytes, bytes]:
    """(width, height, Flate RGB, Flate alpha) of a seal PNG: decoded and compressed once per impression,
    not once per signature (it was a third of the CPU of a one-page seal)."""
    img = _image(png)

    def flate(im: Image.Image) -> bytes:
        stream = generic.StreamObject({}, stream_data=im.tobytes())
        stream.compress()
        return bytes(stream.encoded_data)

    return img.width, img.height, flate(img.convert("RGB")), flate(img.split()[-1])


def write_impression(writer: Any, png: bytes) -> generic.IndirectObject:
    """The impression as an image XObject with an /SMask, the same objects pyhanko's `pil_image` writes."""
    width, height, rgb, alpha = encoded_impression(png)

    def image(colour_space: str, data: bytes, extra: dict[generic.NameObject, Any]) -> generic.IndirectObject:
        entries: dict[generic.NameObject, Any] = {
            generic.pdf_name("/Type"): generic.pdf_name("/XObject"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Image"),
            generic.pdf_name("/Width"): generic.NumberObject(width),
            generic.pdf_name("/Height"): generic.NumberObject(height),
            generic.pdf_name("/ColorSpace"): generic.pdf_name(colour_space),
            generic.pdf_name("/BitsPerComponent"): generic.NumberObject(8),
            generic.pdf_name("/Filter"): generic.pdf_name("/FlateDecode"),
            **extra,
        }
        ref: generic.IndirectObject = writer.add_object(generic.StreamObject(entries, encoded_data=data))
        return ref

    smask = image("/DeviceGray", alpha, {})
    return image("/DeviceRGB", rgb, {generic.pdf_name("/SMask"): smask})


class _Impression(PdfImage):
    """A PdfImage of a seal PNG whose XObject comes from the per-impression cache."""

    def __init__(self, png: bytes) -> None:
        width, height, _, _ = encoded_impression(png)
        super().__init__(Image.new("RGBA", (1, 1)), box=BoxConstraints(width, height))
        self._png = png

    @property
    def image_ref(self) -> generic.IndirectObject:
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:
            self._image_ref = ref = write_impression(self.writer, self._png)
        return ref


def _stamp_style(png: bytes | Image.Image) -> StaticStampStyle:
    background = PdfImage(png) if isinstance(png, Image.Image) else _Impression(png)
    return StaticStampStyle(background=background, border_width=0, background_opacity=1.0, background_layout=_LAYOUT)


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
    timestamper: TimeStamper | None = None,
) -> None:
    """A PAdES B-B signature (ETSI.CAdES.detached) with the seal impression as the widget's appearance; B-T when a
    `timestamper` is given (an RFC 3161 token over the signature value in the unsigned attributes)."""
    writer = IncrementalPdfFileWriter(src, strict=False)
    if cross_page:
        add_cross_page_stamp(writer, seal_png)
    leaf, registry = _parsed_certs(cert, tuple(chain))
    signer = RemoteSigner(leaf, [], sign_digest, registry=registry)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        reason=reason,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer,
        timestamper=timestamper,
        stamp_style=_stamp_style(seal_png),
        new_field_spec=_field(field_name, placement),
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
    timestamp: Callable[[bytes], Awaitable[bytes]] | None = None,
) -> bytes:
    """An SM2/SM3 signature carrying a GB/T 38540 SES_Signature, with an RFC 3161 token over the signature value
    in its `timeStamp` when `timestamp` is given. Returns the SES_Signature DER."""
    writer = IncrementalPdfFileWriter(src, strict=False)
    if cross_page:
        add_cross_page_stamp(writer, seal_png)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    embedder = PdfCMSEmbedder(new_field_spec=_field(field_name, placement))
    coroutine: Any = embedder.write_cms(field_name=field_name, writer=writer)
    next(coroutine)
    reserved = 2 * (len(seal_der) + len(cert) + 1024 + (8192 if timestamp is not None else 0))
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
    token = await timestamp(signature) if timestamp is not None else None
    ses_der = ses.assemble_signature(tbs, cert, signature, token)
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
