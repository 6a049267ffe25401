"""Sealing and signing OFD (GB/T 33190-2016 §18) with GB/T 38540 SES_Signatures or GB/T 35275 SignedData.

Per signature, in the first document's `Signs/` directory (docs/eseal-ofd.md is the contract for a third party):

- `OFD.xml` gets `DocBody/Signatures` → `/Doc_0/Signs/Signatures.xml` on the first signature (before anything is
  digested, so it is protected like every other file);
- `Signatures.xml` lists `<Signature ID Type="Seal|Sign" BaseLoc=".../Sign_N/Signature.xml"/>` and `MaxSignId`; it
  is the one file no signature protects (it must change when a later signature is added);
- `Sign_N/Seal.esl` (type Seal): the SES_Seal, as in the SES_Signature;
- `Sign_N/Signature.xml`: `SignedInfo` { Provider, SignatureMethod 1.2.156.10197.1.501, SignatureDateTime (UTC,
  ISO 8601), References CheckMethod="1.2.156.10197.1.401" — one Reference per file of the package (absolute
  FileRef) with the Base64 SM3 of its bytes: every file except Signatures.xml and this signature's Signature.xml
  and SignedValue.dat, so a later signature protects the earlier ones —, StampAnnot* (ID, PageRef = the page's ID,
  Boundary in mm, Clip for a cross-page strip), Seal/BaseLoc }, `SignedValue` → `Sign_N/SignedValue.dat`;
- `Sign_N/SignedValue.dat`: type Seal — the DER SES_Signature whose `dataHash` is SM3 of the Signature.xml bytes
  and `propertyInfo` its absolute path, with an RFC 3161 timestamp; type Sign — GB/T 35275 SignedData over the
  Signature.xml bytes (eseal/gbt35275.py).

Positions arrive as for PDF (points, lower-left origin, the seal's lower-left corner) and are converted to OFD
millimetres from the top-left; a keyword centres the seal on the text; a cross-page seal is cut in N strips, one
on the right edge of each of the N pages (StampAnnot Boundary = the whole seal placed so that strip i is on the
page, Clip = strip i), as ofdrw draws them.
"""

from __future__ import annotations

import base64
import datetime as dt
import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from lxml import etree

from core.crypto import OID_SM2_WITH_SM3, OID_SM3, sm3
from core.problems import invalid
from eseal import gbt35275, ofd, ses
from eseal.models import SignPosition
from eseal.placement import keyword_hits

PT_TO_MM = 25.4 / 72
PROVIDER = {"ProviderName": "苏证通电子印章", "Company": "江苏省公安厅", "Version": "1.0"}
SigType = Literal["Seal", "Sign"]
RawSign = Callable[[bytes], Awaitable[bytes]]


@dataclass(frozen=True)
class Annot:
    page_id: str
    page: int
    boundary: tuple[float, float, float, float]
    clip: tuple[float, float, float, float] | None = None


def seal_size_mm(seal_der: bytes, size_pt: float) -> tuple[float, float]:
    """Width and height of the impression on the page: `size` (points) wide, the seal's own aspect ratio."""
    width = size_pt * PT_TO_MM
    try:
        seal = ses.parse_seal(seal_der)
        ratio = seal.height_mm / seal.width_mm if seal.width_mm > 0 and seal.height_mm > 0 else 1.0
    except ses.SESFormatError:
        ratio = 1.0
    return width, width * ratio


def placement(pkg: ofd.Package, pos: SignPosition, width: float, height: float) -> list[Annot]:
    """Where one seal goes: StampAnnots (several for a cross-page seal). 4xx problems for what cannot be placed."""
    pages = pkg.pages()
    if pos.cross_page:
        strip = width / len(pages)
        out = []
        for i, page in enumerate(pages):
            top = page.height - (pos.y * PT_TO_MM + height) if pos.y is not None else (page.height - height) / 2
            boundary = (page.width - strip * (i + 1), max(0.0, top), width, height)
            out.append(Annot(page.id, i, boundary, (strip * i, 0.0, strip, height)))
        return out
    if pos.keyword:
        hits = ofd.find_keyword(pkg, pos.keyword)
        hits = keyword_hits(hits, pos)
        hit = hits[0]
        page = pages[hit.page]
        cx, cy = hit.centre
        x = min(max(0.0, cx - width / 2), max(0.0, page.width - width))
        y = min(max(0.0, cy - height / 2), max(0.0, page.height - height))
        return [Annot(page.id, page.index, (x, y, width, height))]
    if pos.x is None or pos.y is None:
        raise invalid("x", "give x and y, or a keyword")
    index = pos.page or 0
    if index >= len(pages):
        raise invalid("page", f"the document has {len(pages)} pages")
    page = pages[index]
    x = pos.x * PT_TO_MM
    y = page.height - (pos.y * PT_TO_MM + height)
    return [Annot(page.id, index, (x, y, width, height))]


def _ensure_signatures(pkg: ofd.Package) -> tuple[str, etree._Element]:
    """The Signatures.xml path and root; created (and named in OFD.xml) on the first signature."""
    path = pkg.signatures_path()
    if path is not None and path in pkg.files:
        return path, pkg.xml(path)
    doc_dir = posixpath.dirname(pkg.doc_root())
    path = f"{doc_dir}/Signs/Signatures.xml" if doc_dir else "Signs/Signatures.xml"
    root = pkg.ofd_xml()
    body = root.find("ofd:DocBody", ofd.NSMAP)
    if body is None:
        raise ofd.OFDError("OFD.xml has no DocBody")
    loc = body.find("ofd:Signatures", ofd.NSMAP)
    if loc is None:
        loc = etree.Element(f"{ofd.OFD}Signatures")
        doc_root = body.find("ofd:DocRoot", ofd.NSMAP)
        following = doc_root.getnext() if doc_root is not None else None
        while following is not None and following.tag == f"{ofd.OFD}Versions":
            following = following.getnext()
        if following is None:
            body.append(loc)
        else:
            following.addprevious(loc)
    loc.text = "/" + path
    pkg.files["OFD.xml"] = ofd.to_xml(root)
    signatures = etree.Element(f"{ofd.OFD}Signatures", nsmap=ofd.NSMAP)
    etree.SubElement(signatures, f"{ofd.OFD}MaxSignId").text = "0"
    return path, signatures


def _sub(
    parent: etree._Element, tag: str, attrs: dict[str, str] | None = None, text: str | None = None
) -> etree._Element:
    el = etree.SubElement(parent, f"{ofd.OFD}{tag}")
    for k, v in (attrs or {}).items():
        el.set(k, v)
    if text is not None:
        el.text = text
    return el


async def sign(
    pkg: ofd.Package,
    *,
    sig_type: SigType,
    annots: list[Annot],
    seal_der: bytes | None,
    cert: bytes,
    sign_sm2: RawSign,
    timestamp: Callable[[bytes], Awaitable[bytes]] | None = None,
    at: dt.datetime | None = None,
) -> str:
    """Add one signature to `pkg` (in place); returns the path of its Signature.xml."""
    now = (at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    signatures_path, signatures = _ensure_signatures(pkg)
    signs_dir = posixpath.dirname(signatures_path)
    max_el = signatures.find("ofd:MaxSignId", ofd.NSMAP)
    if max_el is None:
        max_el = etree.Element(f"{ofd.OFD}MaxSignId")
        signatures.insert(0, max_el)
    try:
        next_id = int((max_el.text or "0").strip()) + 1
    except ValueError:
        next_id = len(signatures) + 1
    n = 0
    while any(name.startswith(f"{signs_dir}/Sign_{n}/") for name in pkg.files):
        n += 1
    sign_dir = f"{signs_dir}/Sign_{n}"
    signature_path, value_path, seal_path = (
        f"{sign_dir}/Signature.xml",
        f"{sign_dir}/SignedValue.dat",
        f"{sign_dir}/Seal.esl",
    )
    signature_id = next_id
    annot_ids = list(range(next_id + 1, next_id + 1 + len(annots)))
    max_el.text = str(annot_ids[-1] if annot_ids else signature_id)
    _sub(signatures, "Signature", {"ID": str(signature_id), "Type": sig_type, "BaseLoc": "/" + signature_path})
    pkg.files[signatures_path] = ofd.to_xml(signatures)
    if sig_type == "Seal" and seal_der is not None:
        pkg.files[seal_path] = seal_der

    root = etree.Element(f"{ofd.OFD}Signature", nsmap=ofd.NSMAP)
    info = _sub(root, "SignedInfo")
    _sub(info, "Provider", PROVIDER)
    _sub(info, "SignatureMethod", text=OID_SM2_WITH_SM3)
    _sub(info, "SignatureDateTime", text=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    refs = _sub(info, "References", {"CheckMethod": OID_SM3})
    for name, data in pkg.files.items():
        if name in (signatures_path, signature_path, value_path):
            continue
        ref = _sub(refs, "Reference", {"FileRef": "/" + name})
        _sub(ref, "CheckValue", text=base64.b64encode(sm3(data)).decode())
    for annot_id, annot in zip(annot_ids, annots, strict=True):
        attrs = {"ID": str(annot_id), "PageRef": annot.page_id, "Boundary": ofd.fmt_box(annot.boundary)}
        if annot.clip is not None:
            attrs["Clip"] = ofd.fmt_box(annot.clip)
        _sub(info, "StampAnnot", attrs)
    if sig_type == "Seal" and seal_der is not None:
        _sub(_sub(info, "Seal"), "BaseLoc", text="/" + seal_path)
    _sub(root, "SignedValue", text="/" + value_path)
    signature_xml = ofd.to_xml(root)
    pkg.files[signature_path] = signature_xml

    if sig_type == "Seal":
        if seal_der is None:
            raise invalid("seal_code", "an OFD seal needs the seal's SES_Seal")
        tbs = ses.tbs_sign(seal_der, sm3(signature_xml), now, "/" + signature_path)
        value = await sign_sm2(bytes(tbs.dump()))
        token = await timestamp(value) if timestamp is not None else None
        pkg.files[value_path] = ses.assemble_signature(tbs, cert, value, token)
    else:
        value = await sign_sm2(signature_xml)
        token = await timestamp(value) if timestamp is not None else None
        pkg.files[value_path] = gbt35275.build(cert, value, token)
    pkg._pages = None
    return signature_path
