"""OFD sealed, signed and verified (GB/T 33190 §18 + GB/T 38540): positions, several seals, an independent reader
(easyofd) and an independent SM2 (gmssl) from the embedded certificates only, tampering, the HTTP API and page,
an OFD sealed by an outside implementation built here from the standards."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from asn1crypto import core as acore
from asn1crypto import parser
from lxml import etree
from PIL import Image

from core.problems import ProblemError
from core.reqsig import sign_headers
from core.resources import Resources
from eseal import ca, impression, ofd, ofdrender, seals, service, signing
from eseal.models import SignPosition, VerifyResult
from tests.eseal_helpers import (
    Bureau,
    bureau,
    gmssl_verify,
    make_ofd,
    outside_party,
    outside_seal_v4,
    outside_signature_v4,
)
from tests.harness import Stack

SHOTS = Path("/tmp/ofd-shots")
NS = {"ofd": "http://www.ofdspec.org/2016"}
LINES = ("本证明由苏州市公安", "局出具，特此证明。", "（盖章）")
CHECKS = {
    "format",
    "signature",
    "cert_seal_match",
    "seal_validity",
    "certificate",
    "signing_time",
    "integrity",
    "timestamp",
}


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()


async def _verify(res: Resources, data: bytes, tmp_path: Path, name: str = "doc.ofd") -> VerifyResult:
    path = tmp_path / name
    await asyncio.to_thread(path.write_bytes, data)
    return await signing.verify_file(res, path)


def _annots(files: dict[str, bytes], sign_dir: str) -> list[etree._Element]:
    root = etree.fromstring(files[f"Doc_0/Signs/{sign_dir}/Signature.xml"])
    return root.findall("ofd:SignedInfo/ofd:StampAnnot", NS)


def _red_share(png: Image.Image, box_px: tuple[int, int, int, int]) -> float:
    """Share of clearly red pixels (the impression) inside a box of an RGB image."""
    raw = png.convert("RGB").crop(box_px).tobytes()
    pixels = len(raw) // 3
    red = sum(1 for i in range(0, len(raw), 3) if raw[i] > 150 and raw[i + 1] < 110 and raw[i + 2] < 110)
    return red / max(1, pixels)


async def test_coordinates_keyword_cross_page_several_seals_easyofd_and_pngs(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局平江分局")
    code = b.seal.code or ""
    src = make_ofd(3, LINES)
    split_keyword = "苏州市公安局出具"  # split across two TextObjects on two lines, on every page
    expected_hit = next(h for h in ofd.find_keyword(ofd.Package.load(src), split_keyword) if h.page == 1)
    out = await signing.sign_ofd(
        res,
        src,
        [
            SignPosition(seal_code=code, x=300, y=500),
            SignPosition(seal_code=code, keyword=split_keyword, page=1),
            SignPosition(seal_code=code, cross_page=True),
        ],
        app_code=b.app_code,
    )
    result = await _verify(res, out, tmp_path)
    assert result.format == "ofd" and result.valid and len(result.signatures) == 3, result
    for sig in result.signatures:
        assert {c.name for c in sig.checks} == CHECKS
        assert all(c.verdict == "pass" for c in sig.checks), sig
        assert sig.kind == "sm2-ses" and sig.seal_code == code

    files = _files(out)
    pkg = ofd.Package.load(out)
    pages = pkg.pages()
    # Coordinates: 300 pt, 500 pt from the lower-left → mm from the top-left; 119 pt wide.
    (a0,) = _annots(files, "Sign_0")
    x, y, w, h = (float(v) for v in a0.get("Boundary").split())
    assert a0.get("PageRef") == pages[0].id
    assert (round(x, 1), round(w, 1), round(y, 1)) == (105.8, 42.0, round(297 - 500 * 25.4 / 72 - w, 1))
    # Keyword on page 1: the seal centred on the part of the split keyword on its first line.
    (a1,) = _annots(files, "Sign_1")
    x, y, w, h = (float(v) for v in a1.get("Boundary").split())
    assert a1.get("PageRef") == pages[1].id
    cx, cy = expected_hit.centre
    assert abs(x + w / 2 - cx) < 0.01 and abs(y + h / 2 - cy) < 0.01
    # Cross-page: one StampAnnot per page, the whole seal placed so that strip i is at the right edge, Clip = strip i.
    strips = _annots(files, "Sign_2")
    assert [s.get("PageRef") for s in strips] == [p.id for p in pages]
    for i, s in enumerate(strips):
        bx, _, bw, _ = (float(v) for v in s.get("Boundary").split())
        cx_, _, cw, _ = (float(v) for v in s.get("Clip").split())
        assert abs(cw - bw / 3) < 0.01 and abs(cx_ - i * bw / 3) < 0.01
        assert abs(bx + cx_ + cw - 210) < 0.01  # the strip ends at the page's right edge
    # The later seal protects the earlier ones (their Signature.xml, SignedValue.dat and Seal.esl).
    refs = {
        r.get("FileRef")
        for r in etree.fromstring(files["Doc_0/Signs/Sign_2/Signature.xml"]).iterfind(".//ofd:Reference", NS)
    }
    for n in (0, 1):
        assert {f"/Doc_0/Signs/Sign_{n}/{f}" for f in ("Signature.xml", "SignedValue.dat", "Seal.esl")} <= refs
    assert "/Doc_0/Signs/Signatures.xml" not in refs and "/OFD.xml" in refs

    # Our rendering (for the preview and for a look): /tmp/ofd-shots.
    await asyncio.to_thread(SHOTS.mkdir, exist_ok=True)
    await asyncio.to_thread((SHOTS / "sealed.ofd").write_bytes, out)
    for i in range(3):
        png = ofdrender.render_page(pkg, i)
        await asyncio.to_thread((SHOTS / f"ours-page{i}.png").write_bytes, png)
        image = Image.open(io.BytesIO(png))
        scale = 96 / 25.4
        for annot in [a for a in (a0, a1, *strips) if a.get("PageRef") == pages[i].id]:
            bx, by, bw, bh = (float(v) for v in annot.get("Boundary").split())
            if annot.get("Clip"):
                cx_, _, cw, _ = (float(v) for v in annot.get("Clip").split())
                bx, bw = bx + cx_, cw
            box_px = (int(bx * scale), int(by * scale), int((bx + bw) * scale), int((by + bh) * scale))
            assert _red_share(image, box_px) > 0.05, (i, annot.get("ID"))

    # easyofd (not ours) reads the package: pages, text, the three signatures, the seal image from SignedValue.dat,
    # and draws each seal where the StampAnnot says.
    from easyofd.ofd import OFD

    reader = OFD()
    reader.read(base64.b64encode(out).decode(), save_xml=False)
    doc = reader.data[0]
    assert len(doc["page_info"]) == 3
    assert [t["text"] for t in doc["page_info"][0]["text_list"]][1:] == list(LINES)
    assert sorted(doc["signatures_page_id"]) == [0, 1, 2]
    assert all(len(s[0]["SignedValue"] or "") > 1000 for s in doc["signatures_page_id"].values())
    images = reader.to_jpg()
    reader.del_data()
    assert len(images) == 3
    first = images[0]
    await asyncio.to_thread(first.save, SHOTS / "easyofd-page0.png")
    px = first.size[0] / 210
    bx, by, bw, bh = (float(v) for v in a0.get("Boundary").split())
    assert _red_share(first, (int(bx * px), int(by * px), int((bx + bw) * px), int((by + bh) * px))) > 0.05
    assert _red_share(first, (int(20 * px), int(200 * px), int(80 * px), int(260 * px))) < 0.01  # nothing elsewhere


async def test_missing_keyword_or_wrong_page_is_a_clear_problem(res: Resources, stack: Stack) -> None:
    b = await bureau(res, "苏州市公安局沧浪分局")
    src = make_ofd(2, LINES)
    with pytest.raises(ProblemError) as missing:
        await signing.sign_ofd(
            res, src, [SignPosition(seal_code=b.seal.code or "", keyword="不存在")], app_code=b.app_code
        )
    assert missing.value.status == 422 and missing.value.slug == "keyword-not-found"
    with pytest.raises(ProblemError) as page:
        await signing.sign_ofd(
            res, src, [SignPosition(seal_code=b.seal.code or "", keyword="（盖章）", page=5)], app_code=b.app_code
        )
    assert page.value.status == 422 and page.value.slug == "keyword-not-on-page" and "[0, 1]" in page.value.detail


def _der_elements(der: bytes) -> list[bytes]:
    _, _, _, _, body, _ = parser.parse(der)
    out, pos = [], 0
    while pos < len(body):
        _, _, _, header, contents, trailer = parser.parse(body[pos:], strict=False)
        out.append(header + contents + trailer)
        pos += len(header) + len(contents) + len(trailer)
    return out


def outside_check(data: bytes) -> list[str]:
    """Verify every seal of an OFD the way docs/eseal-ofd.md tells a third party to, with gmssl and asn1crypto only
    (no eseal code): the problems found, empty when all is well."""
    from gmssl import func
    from gmssl import sm3 as gm_sm3

    def sm3(b: bytes) -> bytes:
        return bytes.fromhex(gm_sm3.sm3_hash(func.bytes_to_list(b)))

    files = _files(data)
    problems: list[str] = []
    body = etree.fromstring(files["OFD.xml"]).find("ofd:DocBody", NS)
    signatures_loc = body.findtext("ofd:Signatures", namespaces=NS).lstrip("/")
    for record in etree.fromstring(files[signatures_loc]).iterfind("ofd:Signature", NS):
        sig_path = record.get("BaseLoc").lstrip("/")
        signature_xml = files[sig_path]
        sig = etree.fromstring(signature_xml)
        for ref in sig.iterfind("ofd:SignedInfo/ofd:References/ofd:Reference", NS):
            name = ref.get("FileRef").lstrip("/")
            want = base64.b64decode(ref.findtext("ofd:CheckValue", namespaces=NS))
            if name not in files or sm3(files[name]) != want:
                problems.append(f"reference {name}")
        value = files[sig.findtext("ofd:SignedValue", namespaces=NS).lstrip("/")]
        # SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgID, signature BIT STRING, ... }
        to_sign, cert, _alg, signature = _der_elements(value)[:4]
        signer_cert = acore.OctetString.load(cert).native
        if gmssl_verify(signer_cert, acore.OctetBitString.load(signature).native, to_sign) is not True:
            problems.append(f"signature {sig_path}")
        # TBS_Sign ::= SEQUENCE { version, eseal SES_Seal, timeInfo, dataHash BIT STRING, propertyInfo, ... }
        _version, eseal, _time, data_hash, prop = _der_elements(to_sign)[:5]
        if acore.OctetBitString.load(data_hash).native != sm3(signature_xml):
            problems.append(f"dataHash {sig_path}")
        if acore.IA5String.load(prop).native != "/" + sig_path:
            problems.append(f"propertyInfo {sig_path}")
        # SES_Seal ::= SEQUENCE { eSealInfo, cert OCTET STRING, signAlgID, signedValue BIT STRING }: over DER(eSealInfo)
        info, maker, _alg, maker_sig = _der_elements(eseal)
        maker_cert = acore.OctetString.load(maker).native
        if gmssl_verify(maker_cert, acore.OctetBitString.load(maker_sig).native, info) is not True:
            problems.append(f"seal {sig_path}")
    return problems


async def test_gmssl_verifies_signatures_and_seals_from_the_embedded_certificates_and_one_byte_breaks_both(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局虎丘分局")
    code = b.seal.code or ""
    out = await signing.sign_ofd(
        res,
        make_ofd(2, LINES),
        [SignPosition(seal_code=code, keyword="（盖章）"), SignPosition(seal_code=code, cross_page=True)],
        app_code=b.app_code,
    )
    problems = outside_check(out)
    assert problems == [], problems  # (gmssl's rare arithmetic failure would show as a problem: then re-run)
    assert (await _verify(res, out, tmp_path)).valid

    files = _files(out)
    content = files["Doc_0/Pages/Page_1/Content.xml"]
    at = content.index("特此".encode())
    files["Doc_0/Pages/Page_1/Content.xml"] = content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1 :]
    tampered = _zip(files)
    assert outside_check(tampered) == ["reference Doc_0/Pages/Page_1/Content.xml"] * 2
    result = await _verify(res, tampered, tmp_path, "t.ofd")
    assert not result.valid
    for sig in result.signatures:
        check = next(c for c in sig.checks if c.name == "integrity")
        assert check.verdict == "fail" and "/Doc_0/Pages/Page_1/Content.xml changed" in check.detail, check


async def test_changed_added_removed_files_and_edited_signature_xml_fail_integrity_and_name_the_file(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局姑苏分局")
    out = await signing.sign_ofd(
        res, make_ofd(1, LINES), [SignPosition(seal_code=b.seal.code or "", keyword="（盖章）")], app_code=b.app_code
    )
    assert (await _verify(res, out, tmp_path)).valid

    def integrity(result: VerifyResult) -> str:
        check = next(c for c in result.signatures[0].checks if c.name == "integrity")
        assert not result.valid and check.verdict == "fail", result
        return str(check.detail)

    files = _files(out)
    changed = dict(files)
    changed["Doc_0/PublicRes.xml"] = files["Doc_0/PublicRes.xml"].replace(b"WenQuanYi", b"WenQuanYJ")
    assert "/Doc_0/PublicRes.xml changed" in integrity(await _verify(res, _zip(changed), tmp_path, "c.ofd"))

    added = {**files, "Doc_0/Res/extra.png": b"\x89PNG not really"}
    assert "/Doc_0/Res/extra.png added" in integrity(await _verify(res, _zip(added), tmp_path, "a.ofd"))

    removed = {k: v for k, v in files.items() if k != "Doc_0/PublicRes.xml"}
    assert "/Doc_0/PublicRes.xml removed" in integrity(await _verify(res, _zip(removed), tmp_path, "r.ofd"))

    edited = dict(files)
    edited["Doc_0/Signs/Sign_0/Signature.xml"] = files["Doc_0/Signs/Sign_0/Signature.xml"].replace(
        b'Boundary="', b'Boundary="1'
    )
    detail = integrity(await _verify(res, _zip(edited), tmp_path, "e.ofd"))
    assert "/Doc_0/Signs/Sign_0/Signature.xml edited" in detail, detail

    value = bytearray(files["Doc_0/Signs/Sign_0/SignedValue.dat"])
    value[-80] ^= 0x01  # inside the signature value or the timestamp token
    broken = {**files, "Doc_0/Signs/Sign_0/SignedValue.dat": bytes(value)}
    result = await _verify(res, _zip(broken), tmp_path, "v.ofd")
    assert not result.valid and any(c.verdict == "fail" for c in result.signatures[0].checks)


async def test_signature_of_type_sign_is_gbt35275_and_verifies(res: Resources, stack: Stack, tmp_path: Path) -> None:
    b = await bureau(res, "苏州市公安局相城分局")
    out = await signing.sign_ofd(
        res, make_ofd(1, LINES), [SignPosition(seal_code=b.seal.code or "", ofd_type="Sign")], app_code=b.app_code
    )
    files = _files(out)
    record = etree.fromstring(files["Doc_0/Signs/Signatures.xml"]).find("ofd:Signature", NS)
    assert record.get("Type") == "Sign"
    assert _annots(files, "Sign_0") == [] and "Doc_0/Signs/Sign_0/Seal.esl" not in files
    # ContentInfo { 1.2.156.10197.6.1.4.2.2, [0] SignedData }: gmssl checks the signature over Signature.xml.
    from asn1crypto import cms

    content_type, tagged = _der_elements(files["Doc_0/Signs/Sign_0/SignedValue.dat"])
    assert acore.ObjectIdentifier.load(content_type).dotted == "1.2.156.10197.6.1.4.2.2"
    signed = cms.SignedData.load(parser.parse(tagged)[4])
    signer = signed["signer_infos"][0]
    cert = signed["certificates"][0].chosen
    assert signer["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.301.1"
    assert gmssl_verify(cert.dump(), signer["signature"].native, files["Doc_0/Signs/Sign_0/Signature.xml"]) is True
    result = await _verify(res, out, tmp_path)
    sig = result.signatures[0]
    verdicts = {c.name: c.verdict for c in sig.checks}
    assert result.valid and sig.kind == "sm2-sign" and verdicts["timestamp"] == "pass", sig
    assert verdicts["cert_seal_match"] == "pass" and sig.seal_code == b.seal.code  # the certificate is the seal's


async def test_suspended_seal_and_revoked_certificate_are_reported(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局吴中分局")
    out = await signing.sign_ofd(
        res, make_ofd(1, LINES), [SignPosition(seal_code=b.seal.code or "", x=100, y=100)], app_code=b.app_code
    )
    assert (await _verify(res, out, tmp_path)).valid
    await seals.suspend(res, b.seal.id, actor="admin")
    result = await _verify(res, out, tmp_path, "s.ofd")
    check = next(c for c in result.signatures[0].checks if c.name == "seal_validity")
    assert not result.valid and check.verdict == "fail" and "suspended" in check.detail
    await seals.resume(res, b.seal.id, actor="admin")
    await ca.revoke(res, b.sm2.id, actor="admin", reason="key_compromise")
    result = await _verify(res, out, tmp_path, "r.ofd")
    check = next(c for c in result.signatures[0].checks if c.name == "certificate")
    assert not result.valid and "revoked (key_compromise)" in check.detail, result


def signed_post(
    http: httpx.Client, b: Bureau, path: str, payload: dict[str, object], headers: dict[str, str] | None = None
) -> httpx.Response:
    body = json.dumps(payload).encode()
    auth = sign_headers("X-App-Code", b.app_code, b.app_secret.encode(), "POST", path, body)
    return http.post(path, content=body, headers={**auth, "Content-Type": "application/json", **(headers or {})})


async def test_ofd_over_http_same_api_as_pdf_idempotency_batch_problems_and_page(
    res: Resources, http: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局园区分局")
    code = b.seal.code
    src = make_ofd(1, LINES)
    path = "/eseal/v1/documents:sign"
    payload: dict[str, object] = {
        "document": base64.b64encode(src).decode(),
        "seals": [{"seal_code": code, "keyword": "（盖章）"}],
        "name": "证明.ofd",
    }
    first = signed_post(http, b, path, payload, {"Idempotency-Key": "ofd-1"})
    assert first.status_code == 200, first.text
    again = signed_post(http, b, path, payload, {"Idempotency-Key": "ofd-1"})  # a retry: new nonce, same key
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    other = signed_post(http, b, path, {**payload, "name": "另一个.ofd"}, {"Idempotency-Key": "ofd-1"})
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    sealed = base64.b64decode(first.json()["document"])
    assert ofd.is_ofd(sealed) and first.json()["signatures"] == 1
    found = await service.search_logs(res, {"kind": "sign", "seal_code": code})
    assert len(found.items) == 1 and found.items[0].doc_name == "证明.ofd"  # the replay did not seal again

    missing = signed_post(http, b, path, {**payload, "seals": [{"seal_code": code, "keyword": "没有这个词"}]})
    assert missing.status_code == 422, missing.text
    problem = missing.json()
    assert problem["type"].endswith("keyword-not-found") and "没有这个词" in problem["detail"]
    assert missing.headers["content-type"].startswith("application/problem+json")
    not_granted = await bureau(res, "苏州市公安局另一分局")
    denied = signed_post(http, not_granted, path, payload)  # another app, not granted this seal
    assert denied.status_code == 403 and denied.json()["type"].endswith("seal-not-granted")
    junk = signed_post(http, b, path, {**payload, "document": base64.b64encode(b"PK\x03\x04 not a zip").decode()})
    assert junk.status_code == 400

    batch = signed_post(
        http,
        b,
        "/eseal/v1/documents:batch-sign",
        {
            "items": [
                payload,
                {**payload, "document": base64.b64encode(make_ofd(3, LINES)).decode()},
                {**payload, "seals": [{"seal_code": code, "keyword": "没有这个词"}]},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    assert [r is not None for r in batch.json()["results"]] == [True, True, False]
    assert "keyword-not-found" in batch.json()["errors"][2]

    api = http.post("/eseal/v1/verifications", files={"file": ("证明.ofd", sealed, "application/ofd")})
    assert api.status_code == 200, api.text
    result = api.json()
    assert result["valid"] and result["format"] == "ofd", result
    assert [c["verdict"] for c in result["signatures"][0]["checks"]] == ["pass"] * 8
    page = http.post("/eseal/verify", files={"file": ("证明.ofd", sealed, "application/ofd")})
    assert page.status_code == 200 and "文档所有签章有效" in page.text and "OFD (GB/T 33190)" in page.text
    assert 'src="data:image/png;base64,' in page.text  # the first page with its seal
    files = _files(sealed)
    files["Doc_0/Pages/Page_0/Content.xml"] = files["Doc_0/Pages/Page_0/Content.xml"].replace("特此".encode(), b"XX")
    bad = http.post("/eseal/verify", files={"file": ("t.ofd", _zip(files), "application/ofd")})
    assert "文档签章无效" in bad.text and "/Doc_0/Pages/Page_0/Content.xml changed" in bad.text

    filled = signed_post(
        http,
        b,
        "/eseal/v1/documents:fill-and-sign",
        {
            "template": "licence",
            "fields": {"holder": "张三", "item": "道路运输", "issuer": "苏州市公安局园区分局"},
            "seal_code": code,
            "format": "ofd",
            "name": "证照.ofd",
        },
    )
    assert filled.status_code == 200, filled.text
    licence = base64.b64decode(filled.json()["document"])
    verdict = http.post("/eseal/v1/verifications", files={"file": ("证照.ofd", licence, "application/ofd")}).json()
    assert verdict["valid"] and verdict["format"] == "ofd", verdict
    lic = ofd.Package.load(licence)
    await asyncio.to_thread((SHOTS / "licence.png").write_bytes, ofdrender.render_page(lic, 0))


async def test_ofd_sealed_by_an_outside_implementation_verifies_on_our_page(
    res: Resources, http: httpx.Client, stack: Stack
) -> None:
    """The §18 files written here by hand (lxml, zipfile, gmssl SM3) around an SES_Signature built by the outside
    GB/T 38540 implementation in tests/eseal_helpers.py: what another vendor's sealing software produces."""
    from gmssl import func
    from gmssl import sm3 as gm_sm3

    def sm3(data: bytes) -> bytes:
        return bytes.fromhex(gm_sm3.sm3_hash(func.bytes_to_list(data)))

    maker, maker_cert, signer, signer_cert, code = await outside_party(res, "张家港市公安局")
    png = impression.render("张家港市公安局", code)
    files = _files(make_ofd(1, LINES))
    ns = NS["ofd"]
    root = etree.fromstring(files["OFD.xml"])
    etree.SubElement(root.find("ofd:DocBody", NS), f"{{{ns}}}Signatures").text = "Doc_0/Signs/Signatures.xml"
    files["OFD.xml"] = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    signatures = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Signatures xmlns:ofd="{ns}"><ofd:MaxSignId>2</ofd:MaxSignId>'
        '<ofd:Signature ID="1" Type="Seal" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>'
    ).encode()
    seal_der = outside_seal_v4(maker, maker_cert, [signer_cert], code, png)
    files["Doc_0/Signs/Sign_0/Seal.esl"] = seal_der
    refs = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>{base64.b64encode(sm3(body)).decode()}</ofd:CheckValue>'
        "</ofd:Reference>"
        for name, body in files.items()
    )
    page_id = etree.fromstring(files["Doc_0/Document.xml"]).find("ofd:Pages/ofd:Page", NS).get("ID")
    signature_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Signature xmlns:ofd="{ns}"><ofd:SignedInfo>'
        '<ofd:Provider ProviderName="外部签章软件" Version="2.0" Company="外部厂商"/>'
        "<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>"
        "<ofd:SignatureDateTime>20261207120000</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="1.2.156.10197.1.401">{refs}</ofd:References>'
        f'<ofd:StampAnnot ID="2" PageRef="{page_id}" Boundary="140 200 40 40"/>'
        "<ofd:Seal><ofd:BaseLoc>/Doc_0/Signs/Sign_0/Seal.esl</ofd:BaseLoc></ofd:Seal>"
        "</ofd:SignedInfo><ofd:SignedValue>SignedValue.dat</ofd:SignedValue></ofd:Signature>"
    ).encode()
    files["Doc_0/Signs/Signatures.xml"] = signatures
    files["Doc_0/Signs/Sign_0/Signature.xml"] = signature_xml
    files["Doc_0/Signs/Sign_0/SignedValue.dat"] = outside_signature_v4(
        signer, signer_cert, seal_der, sm3(signature_xml), "/Doc_0/Signs/Sign_0/Signature.xml"
    )
    document = _zip(files)
    page = http.post("/eseal/verify", files={"file": ("外部.ofd", document, "application/ofd")})
    assert page.status_code == 200 and "文档所有签章有效" in page.text, page.text[-3000:]
    api = http.post("/eseal/v1/verifications", files={"file": ("外部.ofd", document, "application/ofd")}).json()
    verdicts = {c["name"]: c["verdict"] for c in api["signatures"][0]["checks"]}
    assert api["valid"] and verdicts == {**dict.fromkeys(CHECKS, "pass"), "timestamp": "absent"}, api
    assert "OUTSIDE" in next(c["detail"] for c in api["signatures"][0]["checks"] if c["name"] == "format")
    # The outside vendor's package with a changed page fails here too.
    files["Doc_0/Pages/Page_0/Content.xml"] = files["Doc_0/Pages/Page_0/Content.xml"].replace("特此".encode(), b"ZZ")
    bad = http.post("/eseal/v1/verifications", files={"file": ("外部.ofd", _zip(files), "application/ofd")}).json()
    assert not bad["valid"] and "Content.xml changed" in str(bad)
