"""Shared set-up of the eseal tests: a bureau with SM2, RSA and ECDSA P-256 certificates, a published seal, an app."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from core.resources import Resources
from eseal import appauth, ca, repo, seals
from eseal.models import Certificate, Seal, SealKind

FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
OUT = Path(__file__).resolve().parent.parent / "test-output"


@dataclass
class Bureau:
    org: str
    sm2: Certificate
    rsa: Certificate
    seal: Seal
    ec: Certificate
    app_code: str
    app_secret: str


async def bureau(res: Resources, org: str = "苏州市公安局", kind: SealKind = "official") -> Bureau:
    await ca.ensure_cas(res)
    sm2 = await ca.apply(res, subject_kind="org", subject_name=org, subject_org=org, real_name_verified=True)
    rsa = await ca.apply(
        res, subject_kind="org", subject_name=org, subject_org=org, algorithm="RSA", real_name_verified=True
    )
    ec = await ca.apply(
        res, subject_kind="org", subject_name=org, subject_org=org, algorithm="EC", real_name_verified=True
    )
    seal = await seals.apply(
        res,
        kind=kind,
        name=org,
        org_name=org,
        region_code="320500",
        cert_ids=[sm2.id, rsa.id, ec.id],
    )
    await seals.review(res, seal.id, approve=True, reviewer="admin")
    await seals.make(res, seal.id)
    await seals.register(res, seal.id, actor="admin")
    seal = await seals.publish(res, seal.id, actor="admin")
    code = f"app-{uuid.uuid4().hex[:8]}"
    secret = await appauth.create_app(res, code, "测试业务系统", actor="admin", secret=secrets.token_hex(32))
    await seals.grant(res, seal.id, "app", code, actor="admin")
    return Bureau(org, sm2, rsa, seal, ec, code, secret)


def make_pdf(path: Path, pages: int = 1, lines: tuple[str, ...] = ()) -> Path:
    if "wqy" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("wqy", FONT))
    c = canvas.Canvas(str(path))
    for p in range(pages):
        c.setFont("wqy", 14)
        c.drawString(72, 760, f"苏州市公安局 证明 第{p + 1}页")
        y = 720
        for line in lines:
            c.drawString(72, y, line)
            y -= 18
        c.showPage()
    c.save()
    return path


def flip_byte(src: Path, dst: Path) -> None:
    """Change one byte inside the signed part: a letter of reportlab's header comment (parsers skip it)."""
    data = bytearray(src.read_bytes())
    at = data.index(b"ReportLab Generated")
    data[at] ^= 0x20
    dst.write_bytes(bytes(data))


# --------------------------------------------------------------------------- an outside GB/T 38540 implementation
# Built here from the standard's ASN.1 with asn1crypto primitives and gmssl (pure-Python SM2), not from eseal's
# code: what another vendor's seal system would produce.

SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM2_CURVE = "1.2.156.10197.1.301"
_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


def der_seq(*parts: bytes) -> bytes:
    """DER SEQUENCE of already-encoded elements."""
    body = b"".join(parts)
    return b"\x30" + _der_len(len(body)) + body


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    size = (n.bit_length() + 7) // 8
    return bytes([0x80 | size]) + n.to_bytes(size, "big")


class OutsideKey:
    """An SM2 key held by gmssl: sign with SM3 and the default user id, signatures as DER SEQUENCE {r, s}."""

    def __init__(self) -> None:
        from gmssl import sm2 as gm_sm2

        d = secrets.randbelow(_SM2_N - 2) + 1
        self.private_hex = f"{d:064x}"
        probe = gm_sm2.CryptSM2(private_key=self.private_hex, public_key="", mode=1)
        self.public_hex = probe._kg(d, gm_sm2.default_ecc_table["g"])
        self.crypt = gm_sm2.CryptSM2(private_key=self.private_hex, public_key=self.public_hex, mode=1)

    def spki(self) -> bytes:
        from asn1crypto import keys as akeys

        info = akeys.PublicKeyInfo(
            {
                "algorithm": {"algorithm": "ec", "parameters": akeys.ECDomainParameters(("named", SM2_CURVE))},
                "public_key": bytes.fromhex("04" + self.public_hex),
            }
        )
        return bytes(info.dump())

    def sign(self, data: bytes) -> bytes:
        from asn1crypto import algos

        for _ in range(5):  # gmssl's point arithmetic raises now and then (a gmssl bug): a new k
            try:
                raw = self.crypt.sign_with_sm3(data)
                if self.crypt.verify_with_sm3(raw, data):
                    return bytes(algos.DSASignature.from_p1363(bytes.fromhex(raw)).dump())
            except (TypeError, ValueError):
                continue
        raise RuntimeError("gmssl could not sign")


def gmssl_verify(cert_der: bytes, signature_der: bytes, data: bytes) -> bool | None:
    """gmssl's verdict with the public key of a DER certificate; None when gmssl itself breaks."""
    import binascii

    from asn1crypto import algos
    from asn1crypto import x509 as ax509
    from gmssl import sm2 as gm_sm2

    point = bytes(ax509.Certificate.load(cert_der).public_key["public_key"].native)
    crypt = gm_sm2.CryptSM2(private_key="", public_key=point[1:].hex(), mode=1)
    raw = algos.DSASignature.load(signature_der).to_p1363()
    raw = raw.rjust(64, b"\0") if len(raw) < 64 else raw
    try:
        return bool(crypt.verify_with_sm3(raw.hex(), data))
    except (TypeError, ValueError, binascii.Error):
        return None


def outside_seal_v4(
    maker: OutsideKey, maker_cert: bytes, signer_certs: list[bytes], es_id: str, png: bytes, days: int = 365
) -> bytes:
    """SES_Seal (GB/T 38540 §6.1): maker's signature over DER(SES_SealInfo)."""
    import datetime as dt

    from asn1crypto import core as acore

    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    gt = lambda t: bytes(acore.GeneralizedTime(t).dump())  # noqa: E731
    header = der_seq(
        bytes(acore.IA5String("ES").dump()), bytes(acore.Integer(4).dump()), bytes(acore.IA5String("OUTSIDE").dump())
    )
    prop = der_seq(
        bytes(acore.Integer(1).dump()),
        bytes(acore.UTF8String("外部厂商测试章").dump()),
        bytes(acore.Integer(1).dump()),
        der_seq(*[bytes(acore.OctetString(c).dump()) for c in signer_certs]),
        gt(now),
        gt(now),
        gt(now + dt.timedelta(days=days)),
    )
    picture = der_seq(
        bytes(acore.IA5String("PNG").dump()),
        bytes(acore.OctetString(png).dump()),
        bytes(acore.Integer(40).dump()),
        bytes(acore.Integer(40).dump()),
    )
    info = der_seq(header, bytes(acore.IA5String(es_id).dump()), prop, picture)
    return der_seq(
        info,
        bytes(acore.OctetString(maker_cert).dump()),
        bytes(acore.ObjectIdentifier(SM2_WITH_SM3).dump()),
        _bit_string(maker.sign(info)),
    )


def _bit_string(value: bytes) -> bytes:
    return b"\x03" + _der_len(len(value) + 1) + b"\x00" + value


def outside_signature_v4(signer: OutsideKey, signer_cert: bytes, seal_der: bytes, data_hash: bytes, prop: str) -> bytes:
    """SES_Signature (GB/T 38540 §7.1): signature over DER(TBS_Sign), no timestamp."""
    import datetime as dt

    from asn1crypto import core as acore

    tbs = der_seq(
        bytes(acore.Integer(4).dump()),
        seal_der,
        bytes(acore.GeneralizedTime(dt.datetime.now(dt.UTC).replace(microsecond=0)).dump()),
        _bit_string(data_hash),
        bytes(acore.IA5String(prop).dump()),
    )
    return der_seq(
        tbs,
        bytes(acore.OctetString(signer_cert).dump()),
        bytes(acore.ObjectIdentifier(SM2_WITH_SM3).dump()),
        _bit_string(signer.sign(tbs)),
    )


def outside_seal_v1(maker: OutsideKey, maker_cert: bytes, signer_certs: list[bytes], es_id: str, png: bytes) -> bytes:
    """SESeal (GM/T 0031-2014): signInfo.signData over DER(SEQUENCE { esealInfo, cert, signatureAlgorithm })."""
    import datetime as dt

    from asn1crypto import core as acore

    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    ut = lambda t: bytes(acore.UTCTime(t).dump())  # noqa: E731
    header = der_seq(
        bytes(acore.IA5String("ES").dump()), bytes(acore.Integer(2).dump()), bytes(acore.IA5String("OUTSIDE1").dump())
    )
    prop = der_seq(
        bytes(acore.Integer(1).dump()),
        bytes(acore.UTF8String("外部厂商旧版章").dump()),
        der_seq(*[bytes(acore.OctetString(c).dump()) for c in signer_certs]),
        ut(now),
        ut(now),
        ut(now + dt.timedelta(days=365)),
    )
    picture = der_seq(
        bytes(acore.IA5String("PNG").dump()),
        bytes(acore.OctetString(png).dump()),
        bytes(acore.Integer(40).dump()),
        bytes(acore.Integer(40).dump()),
    )
    info = der_seq(header, bytes(acore.IA5String(es_id).dump()), prop, picture)
    cert = bytes(acore.OctetString(maker_cert).dump())
    alg = bytes(acore.ObjectIdentifier(SM2_WITH_SM3).dump())
    return der_seq(info, der_seq(cert, alg, _bit_string(maker.sign(der_seq(info, cert, alg)))))


def outside_signature_v1(signer: OutsideKey, signer_cert: bytes, seal_der: bytes, data_hash: bytes, prop: str) -> bytes:
    """SES_Signature (GM/T 0031-2014): TBS_Sign holds the signer certificate and algorithm; signature over it."""
    import datetime as dt

    from asn1crypto import core as acore

    when = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode()
    tbs = der_seq(
        bytes(acore.Integer(1).dump()),
        seal_der,
        _bit_string(when),
        _bit_string(data_hash),
        bytes(acore.IA5String(prop).dump()),
        bytes(acore.OctetString(signer_cert).dump()),
        bytes(acore.ObjectIdentifier(SM2_WITH_SM3).dump()),
    )
    return der_seq(tbs, _bit_string(signer.sign(tbs)))


def make_ofd(pages: int = 1, lines: tuple[str, ...] = (), heading: str = "苏州市公安局 证明") -> bytes:
    """An OFD of `pages` A4 pages: a heading, then `lines` (each a TextObject) from 50 mm down."""
    from eseal import ofd

    specs = []
    for p in range(pages):
        texts = [ofd.Text(f"{heading} 第{p + 1}页", 25, 30, 5.0)]
        texts += [ofd.Text(line, 25, 50 + 7 * i, 4.2) for i, line in enumerate(lines)]
        specs.append(ofd.PageSpec(texts=texts, rects=[ofd.Rect(15, 15, 180, 267, 0.3)]))
    return ofd.build(specs, title=heading)


async def outside_party(res: Resources, org: str) -> tuple[OutsideKey, bytes, OutsideKey, bytes, str]:
    """An outside maker and signer whose SM2 keys gmssl holds, certified by our CA as UKey certificates; the signer's
    certificate bound to a seal registered (and published) here."""
    await ca.ensure_cas(res)
    maker, signer = OutsideKey(), OutsideKey()
    certs = []
    for key, name in ((maker, f"{org}制章系统"), (signer, org)):
        c = await ca.apply(
            res,
            subject_kind="org",
            subject_name=name,
            subject_org=org,
            form="ukey",
            public_key=key.spki(),
            real_name_verified=True,
        )
        found = await repo.certificate(res.db, c.id)
        assert found is not None
        certs.append((c, bytes(found["cert_der"])))
    seal = await seals.apply(
        res, kind="official", name=org, org_name=org, region_code="320500", cert_ids=[certs[1][0].id], imported=True
    )
    await seals.review(res, seal.id, approve=True, reviewer="admin")
    seal = await seals.make(res, seal.id)
    await seals.register(res, seal.id, actor="admin")
    await seals.publish(res, seal.id, actor="admin")
    return maker, certs[0][1], signer, certs[1][1], seal.code or ""
