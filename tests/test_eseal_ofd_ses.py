"""Standard SES structures: the maker's signature as GB/T 38540 specifies (checked with gmssl), legacy seals
accepted and re-made, the SM2 SES_Signature's RFC 3161 timestamp, v4 and v1 structures from an outside maker."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from asn1crypto import cms, parser
from asn1crypto import core as acore
from pyhanko.pdf_utils.reader import PdfFileReader

from core.crypto import OID_SM2_WITH_SM3, sm3
from core.resources import Resources
from eseal import ca, checks, impression, keys, logs, pdfsign, repo, ses, signing
from eseal.models import Check, SignPosition
from tests.eseal_helpers import (
    bureau,
    gmssl_verify,
    make_pdf,
    outside_party,
    outside_seal_v1,
    outside_seal_v4,
    outside_signature_v1,
    outside_signature_v4,
)
from tests.harness import Stack


def _bits(el: acore.Asn1Value) -> bytes:
    return bytes(el.contents[1:])


def _elements(der: bytes) -> list[tuple[int, int, int, bytes, bytes]]:
    """The top-level elements of a DER SEQUENCE as (class, method, tag, header, contents)."""
    _, _, _, _, body, _ = parser.parse(der)
    out, pos = [], 0
    while pos < len(body):
        class_, method, tag, header, contents, trailer = parser.parse(body[pos:], strict=False)
        out.append((class_, method, tag, header, contents))
        pos += len(header) + len(contents) + len(trailer)
    return out


async def test_maker_signature_is_over_der_seal_info_and_gmssl_agrees(res: Resources, stack: Stack) -> None:
    b = await bureau(res, "苏州市公安局工业园区分局")
    row = await repo.seal_by_code(res.db, b.seal.code or "")
    assert row is not None
    seal = acore.load(bytes(row["ses_seal"]))  # read generically: eSealInfo, cert, signAlgID, signedValue
    info, maker_cert = seal[0].dump(), bytes(seal[1].native)
    assert seal[2].dotted == OID_SM2_WITH_SM3
    assert gmssl_verify(maker_cert, _bits(seal[3]), info) is True
    # Not over the old concatenation any more.
    old = info + seal[1].dump() + seal[2].dump()
    assert gmssl_verify(maker_cert, _bits(seal[3]), old) is False
    assert ses.parse_seal(bytes(row["ses_seal"])).maker_form() == "standard"


async def test_sm2_signature_carries_a_trusted_timestamp_over_its_value(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局高新区分局")
    out = tmp_path / "sm2-ts.pdf"
    await signing.sign_file(
        res,
        make_pdf(tmp_path / "in.pdf", lines=("特此证明。",)),
        out,
        [SignPosition(seal_code=b.seal.code or "", x=300, y=560)],
        app_code=b.app_code,
        algorithm="sm2",
    )
    with out.open("rb") as f:
        sig = PdfFileReader(f, strict=False).root["/AcroForm"]["/Fields"][0].get_object()["/V"].get_object()
        contents = bytes(sig["/Contents"]).rstrip(b"\0")
    top = _elements(contents)
    assert len(top) == 5
    class_, method, tag, _, inner = top[4]
    assert (class_, method, tag) == (2, 1, 0)  # [0] EXPLICIT
    token = cms.ContentInfo.load(_bits(acore.load(inner)))
    tst = token["content"]["encap_content_info"]["content"].parsed
    assert tst["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    signature_value = top[3][4][1:]  # BIT STRING contents after the unused-bits byte
    assert tst["message_imprint"]["hashed_message"].native == hashlib.sha256(signature_value).digest()
    result = await signing.verify_file(res, out)
    check = next(c for c in result.signatures[0].checks if c.name == "timestamp")
    assert result.valid and check.verdict == "pass" and "时间戳" in check.detail, check


async def test_legacy_seal_is_accepted_on_old_documents_and_remade_on_next_use(
    res: Resources, stack: Stack, tmp_path: Path
) -> None:
    b = await bureau(res, "苏州市公安局吴江分局")
    row = await repo.seal_by_code(res.db, b.seal.code or "")
    assert row is not None
    # The seal as it was made before 2026-12-07: maker's signature over the concatenation.
    maker = await repo.certificate_by_applicant(res.db, ca.MAKER)
    assert maker is not None
    parsed = ses.SESSeal.load(bytes(row["ses_seal"]))
    info_der = bytes(parsed["e_seal_info"].dump())
    legacy_tbs = ses.legacy_seal_to_be_signed(info_der, bytes(maker["cert_der"]))
    legacy_sig = await keys.signer(res).sign(maker["key_index"], legacy_tbs)
    legacy = ses.assemble_seal(parsed["e_seal_info"], bytes(maker["cert_der"]), legacy_sig)
    assert ses.is_legacy_seal(legacy) and ses.parse_seal(legacy).maker_form() == "legacy"
    await repo.update_seal(res.db, row["id"], ses_seal=legacy)

    # A document sealed then (the SES_Signature embeds the legacy seal) still verifies, with a warning.
    cert = next(c for c in await repo.seal_cert_rows(res.db, row["id"]) if c["algorithm"] == "SM2")
    old_doc = tmp_path / "old.pdf"
    src = make_pdf(tmp_path / "in.pdf", lines=("旧文件。",))
    with src.open("rb") as fin, old_doc.open("w+b") as fout:

        async def sign(data: bytes) -> bytes:
            return await keys.signer(res).sign(cert["key_index"], data)

        await pdfsign.sign_sm2(
            fin,
            fout,
            field_name="Old1",
            placement=pdfsign.Placement(0, 100, 100),
            seal_png=bytes(row["image_png"]),
            seal_der=legacy,
            seal_code=b.seal.code or "",
            cert=bytes(cert["cert_der"]),
            sign_sm2=sign,
        )
    result = await signing.verify_file(res, old_doc)
    validity = next(c for c in result.signatures[0].checks if c.name == "seal_validity")
    assert result.valid and validity.verdict == "warn" and "legacy" in validity.detail, validity

    # The next signature re-makes the seal in the standard form and uses it.
    new_doc = tmp_path / "new.pdf"
    await signing.sign_file(
        res,
        src,
        new_doc,
        [SignPosition(seal_code=b.seal.code or "", x=100, y=100)],
        app_code=b.app_code,
        algorithm="sm2",
    )
    row = await repo.seal_by_code(res.db, b.seal.code or "")
    assert row is not None and not ses.is_legacy_seal(bytes(row["ses_seal"]))
    assert ses.parse_seal(bytes(row["ses_seal"])).maker_form() == "standard"
    result = await signing.verify_file(res, new_doc)
    validity = next(c for c in result.signatures[0].checks if c.name == "seal_validity")
    assert result.valid and validity.verdict == "pass", validity


async def test_outside_v4_and_v1_signatures_pass_our_checks(res: Resources, stack: Stack) -> None:
    maker, maker_cert, signer, signer_cert, code = await outside_party(res, "昆山市公安局")
    png = impression.render("昆山市公安局", "3205831000001X")
    document = "外部厂商签署的原文".encode()
    digest = sm3(document)
    trust = await signing.trust(res)
    await signing.seal_states(res, trust, {code})

    def integrity(doc: ses.Signature) -> Check:
        return Check("integrity", "pass" if doc.data_hash == digest else "fail", "dataHash vs SM3 of the document")

    for version, seal_der, signature in (
        (4, outside_seal_v4(maker, maker_cert, [signer_cert], code, png), outside_signature_v4),
        (1, outside_seal_v1(maker, maker_cert, [signer_cert], code, png), outside_signature_v1),
    ):
        der = signature(signer, signer_cert, seal_der, digest, "/Doc_0/Signs/Sign_0/Signature.xml")
        parsed = ses.parse_signature(der)
        assert parsed.version == version and parsed.seal.version == version and parsed.seal.es_id == code
        report = await checks.ses_report(der, trust, integrity, field_name=f"v{version}")
        verdicts = {c.name: c.verdict for c in report.checks}
        assert report.valid, report
        assert verdicts == {
            "format": "pass",
            "signature": "pass",
            "cert_seal_match": "pass",
            "seal_validity": "pass",
            "certificate": "pass",
            "signing_time": "pass",
            "integrity": "pass",
            "timestamp": "absent",
        }, report
        # One byte of the signed structure changed: the signature check fails (and the hash, if that byte).
        tampered = bytearray(der)
        at = der.index(digest)
        tampered[at] ^= 0x01
        bad = await checks.ses_report(bytes(tampered), trust, integrity, field_name="bad")
        failed = {c.name for c in bad.checks if c.verdict == "fail"}
        assert not bad.valid and {"signature", "integrity"} <= failed, bad
        # The seal's maker signature broken: seal validity fails.
        broken_seal = bytearray(seal_der)
        name_at = seal_der.index("外部".encode())
        broken_seal[name_at + 1] ^= 0x01
        der = signature(signer, signer_cert, bytes(broken_seal), digest, "x")
        bad = await checks.ses_report(der, trust, integrity, field_name="bad-seal")
        assert [c.verdict for c in bad.checks if c.name == "seal_validity"] == ["fail"], bad


async def test_concurrent_log_appends_are_group_committed_into_one_intact_chain(res: Resources, stack: Stack) -> None:
    """A burst of verifications logs through the group commit: every row gets its own sequence number and the
    SM3 chain verifies as if they had been appended one by one."""
    seqs = await asyncio.gather(
        *(logs.append(res.db, "verify", "verify", actor="burst", doc_hash=f"{i:064x}") for i in range(120))
    )
    assert len(set(seqs)) == 120 and sorted(seqs) == list(range(min(seqs), min(seqs) + 120))
    assert await logs.verify_chain(res.db) == []
    found = await logs.search(res.db, {"actor": "burst"}, limit=100)
    assert len(found.items) == 100
