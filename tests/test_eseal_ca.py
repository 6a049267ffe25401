"""CAs and certificates (SM2 certificates checked with gmssl), their lifecycle, trusted roots; seal impressions
(saved under test-output/), upload cleaning, the seal lifecycle and SES_Seal."""

from __future__ import annotations

import io

import pytest
from asn1crypto import x509
from cryptography import x509 as cx509
from gmssl import sm2 as gm_sm2
from PIL import Image

from core.crypto import SM2PrivateKey, SM2PublicKey, der_to_raw
from core.problems import ProblemError
from core.resources import Resources
from eseal import ca, impression, seals, ses, x509build
from tests.eseal_helpers import OUT, bureau
from tests.harness import Stack


def gmssl_verifies(cert_der: bytes, issuer_der: bytes) -> bool:
    cert = x509.Certificate.load(cert_der)
    xy = SM2PublicKey.from_der(x509build.spki_of(issuer_der)).to_uncompressed()[1:].hex()
    crypt = gm_sm2.CryptSM2(private_key="", public_key=xy, mode=1)
    sig = der_to_raw(cert["signature_value"].native).hex()
    return bool(crypt.verify_with_sm3(sig, cert["tbs_certificate"].dump()))


async def test_sm2_hierarchy_uses_national_oids_and_verifies_with_gmssl(res: Resources, stack: Stack) -> None:
    await ca.ensure_cas(res)
    issuing, root = await ca.chain_of(res, "sm2-issuing")
    cert = await ca.apply(
        res, subject_kind="person", subject_name="张三", subject_org="苏州市公安局", real_name_verified=True
    )
    assert cert.status == "issued" and cert.form == "cloud"
    leaf = await ca.der(res, cert.id)
    parsed = x509.Certificate.load(leaf)
    assert parsed["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert parsed.public_key["algorithm"]["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    assert parsed.key_usage_value.native == {"digital_signature", "non_repudiation"}
    assert gmssl_verifies(leaf, issuing) and gmssl_verifies(issuing, root) and gmssl_verifies(root, root)
    assert not gmssl_verifies(leaf, root)
    # RSA hierarchy with cryptography.
    rsa_issuing, rsa_root = (cx509.load_der_x509_certificate(d) for d in await ca.chain_of(res, "rsa-issuing"))
    rsa_issuing.verify_directly_issued_by(rsa_root)
    # Trusted roots in priority order; an outside root can be added and ranked.
    outsider_key = SM2PrivateKey.generate()
    spki = outsider_key.public_key().to_der()
    name = x509build.name("Other Province Root", org="浙江省公安厅")

    async def sign(data: bytes) -> bytes:
        return outsider_key.sign(data)

    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    other = await x509build.build_certificate(
        subject=name,
        subject_spki=spki,
        issuer=name,
        issuer_spki=spki,
        issuer_algorithm="SM2",
        sign=sign,
        not_before=now,
        not_after=now + dt.timedelta(days=30),
        serial=x509build.new_serial(),
        ca=True,
    )
    await ca.add_trusted_root(res, "zj-root", other, priority=5, actor="admin")
    assert [r for r, _ in await ca.trusted_roots(res)][:3] == ["zj-root", "sm2-root", "rsa-root"]
    await ca.set_trust(res, "zj-root", trusted=False, priority=5, actor="admin")
    assert "zj-root" not in [r for r, _ in await ca.trusted_roots(res)]


async def test_certificate_lifecycle_review_renew_suspend_ukey(res: Resources, stack: Stack) -> None:
    pending = await ca.apply(res, subject_kind="org", subject_name="苏州市公安局园区分局", algorithm="RSA")
    assert pending.status == "applied" and pending.serial is None  # not real-name verified: waits for review
    issued = await ca.review(res, pending.id, approve=True, reviewer="admin")
    assert issued.status == "issued" and issued.algorithm == "RSA"
    renewed = await ca.renew(res, issued.id, days=30, actor="admin")
    assert renewed.serial != issued.serial and renewed.not_after and renewed.not_before
    assert (renewed.not_after - renewed.not_before).days == 30
    assert (await ca.suspend(res, issued.id, actor="admin")).status == "suspended"
    with pytest.raises(ProblemError):
        await ca.renew(res, issued.id)
    assert (await ca.resume(res, issued.id, actor="admin")).status == "issued"
    rejected = await ca.review(
        res, (await ca.apply(res, subject_kind="org", subject_name="x")).id, approve=False, reviewer="admin"
    )
    assert rejected.status == "rejected"

    holder = SM2PrivateKey.generate()  # UKey: the key never leaves the holder
    ukey = await ca.apply(
        res,
        subject_kind="person",
        subject_name="李四",
        form="ukey",
        usage="encrypt",
        public_key=holder.public_key().to_der(),
        real_name_verified=True,
    )
    der = await ca.der(res, ukey.id)
    assert x509build.spki_of(der) == holder.public_key().to_der()
    assert x509.Certificate.load(der).key_usage_value.native == {
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
    }
    with pytest.raises(ProblemError):  # an RSA certificate for an SM2 key
        await ca.apply(
            res,
            subject_kind="person",
            subject_name="李四",
            form="ukey",
            algorithm="RSA",
            public_key=holder.public_key().to_der(),
        )


def _red_alpha_share(png: bytes) -> tuple[float, set[str]]:
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    raw = img.tobytes()
    pixels = [tuple(raw[i : i + 4]) for i in range(0, len(raw), 4)]
    inked = [p for p in pixels if p[3] > 128]
    colours = {"red" if r > 150 and g < 90 and b < 90 else "other" for r, g, b, _ in inked}
    return len(inked) / len(pixels), colours


def test_impressions_from_templates_look_like_seals() -> None:
    OUT.mkdir(exist_ok=True)
    samples = {
        "seal-round-suzhou.png": impression.render("苏州市公安局", "32050010000001X", shape="round"),
        "seal-oval-contract.png": impression.render(
            "苏州市公安局姑苏分局", "32050820000026", shape="oval", purpose="合同专用章"
        ),
        "seal-square-personal.png": impression.render("王小明", shape="square"),
    }
    sheet = Image.new("RGB", (1260, 420), "white")
    for i, (name, png) in enumerate(samples.items()):
        (OUT / name).write_bytes(png)
        img = Image.open(io.BytesIO(png))
        assert img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0  # type: ignore[index]  # transparent corner
        share, colours = _red_alpha_share(png)
        assert 0.05 < share < 0.5 and colours == {"red"}
        sheet.paste(img, (i * 420, 0), img)
    sheet.save(OUT / "seal-impressions.png")
    with pytest.raises(ValueError):
        impression.render("x", shape="hexagon")


def test_uploaded_scan_is_cleaned_to_transparent_red() -> None:
    scan = Image.new("RGB", (300, 300), (245, 242, 230))  # off-white paper
    png = impression.render("苏州市公安局", "1", size_px=300)
    ink = Image.open(io.BytesIO(png))
    scan.paste(Image.new("RGB", ink.size, (200, 40, 50)), (0, 0), ink)
    for fmt in ("JPEG", "BMP", "GIF", "PNG"):
        buf = io.BytesIO()
        scan.save(buf, fmt)
        cleaned = Image.open(io.BytesIO(impression.clean_upload(buf.getvalue()))).convert("RGBA")
        assert cleaned.getpixel((4, 4))[3] == 0, fmt  # type: ignore[index]  # paper gone
        share, colours = _red_alpha_share(impression.clean_upload(buf.getvalue()))
        assert share > 0.03 and colours == {"red"}, fmt
    with pytest.raises(ValueError):
        impression.clean_upload(b"%PDF-1.4 not an image")


async def test_seal_lifecycle_and_ses_seal(res: Resources, stack: Stack) -> None:
    b = await bureau(res, "苏州市公安局相城分局", kind="contract")
    assert b.seal.status == "published" and b.seal.code and b.seal.code[:7] == "3205002"
    assert b.seal.code[-1] == seals.check_char(b.seal.code[:-1])
    assert set(b.seal.cert_serials) == {b.sm2.serial, b.rsa.serial, b.ec.serial}
    from eseal import repo

    row = await repo.seal_by_code(res.db, b.seal.code)
    assert row is not None
    seal_der = bytes(row["ses_seal"])
    assert ses.seal_signature_valid(seal_der)
    parsed = ses.SESSeal.load(seal_der)
    info = parsed["e_seal_info"]
    assert info["header"]["id"].native == "ES" and info["es_id"].native == b.seal.code
    assert info["property"]["type"].native == ses.SEAL_TYPES["contract"]
    assert info["picture"]["data"].native == bytes(row["image_png"])
    # The maker's SM2 signature over the seal checks out with gmssl too.
    maker = bytes(parsed["cert"].native)
    xy = SM2PublicKey.from_der(x509build.spki_of(maker)).to_uncompressed()[1:].hex()
    crypt = gm_sm2.CryptSM2(private_key="", public_key=xy, mode=1)
    tbs = ses.seal_to_be_signed(info, maker)
    assert crypt.verify_with_sm3(der_to_raw(ses.bit_bytes(parsed["signed_value"])).hex(), tbs)

    changed = await seals.change_impression(res, b.seal.id, upload=None, actor="admin")
    assert changed.status == "published"
    with pytest.raises(ProblemError):
        await seals.destroy(res, b.seal.id, actor="admin")  # revoke first
    await seals.revoke(res, b.seal.id, actor="admin")
    destroyed = await seals.destroy(res, b.seal.id, actor="admin")
    assert destroyed.status == "destroyed"
    with pytest.raises(ProblemError):
        await seals.image(res, b.seal.id)
    with pytest.raises(ProblemError):
        await seals.usable(res, b.seal.code, app_code=b.app_code, user_id=None, password=None)
