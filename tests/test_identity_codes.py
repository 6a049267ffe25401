"""identity.codes.codec / identity.codes.qr: issue-verify, tampering, independent checks with gmssl and zxing-cpp.

Pure tests (no database, no servers): run with ``pytest tests/test_identity_codes.py --noconftest``.
"""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
import zxingcpp
from gmssl import func, sm2
from gmssl import sm3 as gm_sm3
from PIL import Image, ImageDraw
from qrcode.util import MODE_ALPHA_NUM, QRData

from core.crypto import SM2PrivateKey, SM2PublicKey, der_to_raw
from identity.codes import codec as codes
from identity.codes import qr
from identity.codes.codec import CodeError, IssuedCode

NOW = 1_750_000_000.0
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def issuer() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def keys(issuer: SM2PrivateKey) -> dict[str, SM2PublicKey]:
    return codes.keyring([issuer.public_key()])


@pytest.fixture
def code(issuer: SM2PrivateKey) -> IssuedCode:
    return codes.issue(issuer, ttl_seconds=60, now=NOW)


def raw_bytes(text: str) -> bytes:
    """Decode the text form independently of identity.codes.codec."""
    body = text.removeprefix("SZT1")
    return base64.b32decode(body + "=" * (-len(body) % 8))


def to_text(raw: bytes) -> str:
    return "SZT1" + base64.b32encode(raw).decode().rstrip("=")


def kind_of(text: str, keys: dict[str, SM2PublicKey], now: float = NOW) -> str:
    try:
        codes.verify(text, keys, now=now)
    except CodeError as exc:
        return exc.kind
    return "ok"


def gmssl_verifier(public_key: SM2PublicKey) -> sm2.CryptSM2:
    xy_hex = public_key.to_uncompressed()[1:].hex()
    verifier = sm2.CryptSM2(private_key="", public_key=xy_hex, mode=1)
    # gmssl's constructor does public_key.lstrip("04"), which can eat leading digits of X: set it verbatim.
    verifier.public_key = xy_hex
    return verifier


def decode_qr(image: Image.Image) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)))


# --------------------------------------------------------------------------- format


def test_roundtrip(code: IssuedCode, issuer: SM2PrivateKey, keys: dict[str, SM2PublicKey]) -> None:
    parsed = codes.verify(code.text, keys, now=NOW)
    assert parsed.code_id == code.code_id
    assert parsed.kid == code.kid == codes.key_id_text(issuer.public_key())
    assert parsed.expires_at == code.expires_at == int(NOW) + 60
    assert codes.parse(code.text) == parsed


def test_layout(code: IssuedCode) -> None:
    assert len(code.text) == codes.TEXT_CHARS == 147
    assert code.text.startswith("SZT1")
    assert set(code.text) <= QR_ALPHANUMERIC
    raw = raw_bytes(code.text)
    assert len(raw) == 89
    assert raw[0] == 1
    assert raw[1:5].hex() == code.kid
    assert raw[5:21] == code.code_id
    assert int.from_bytes(raw[21:25], "big") == code.expires_at


def test_key_id_is_sm3_prefix_of_uncompressed_point(issuer: SM2PrivateKey) -> None:
    point = issuer.public_key().to_uncompressed()
    assert point[0] == 4 and len(point) == 65
    reference = bytes.fromhex(gm_sm3.sm3_hash(func.bytes_to_list(point)))[:4]
    assert codes.key_id(issuer.public_key()) == reference
    assert codes.key_id_text(issuer.public_key()) == reference.hex()


def test_code_ids_are_random(issuer: SM2PrivateKey) -> None:
    ids = {codes.issue(issuer, now=NOW).code_id for _ in range(20)}
    assert len(ids) == 20


def test_issue_rejects_bad_ttl(issuer: SM2PrivateKey) -> None:
    for ttl in (0, -1, codes.MAX_TTL_SECONDS + 1):
        with pytest.raises(ValueError):
            codes.issue(issuer, ttl_seconds=ttl, now=NOW)


# --------------------------------------------------------------------------- verification failures


@pytest.mark.parametrize("byte_index", [*range(5, 25), *range(25, 89, 3), 88])
def test_flipped_signed_or_signature_byte_is_forged(
    code: IssuedCode, keys: dict[str, SM2PublicKey], byte_index: int
) -> None:
    raw = bytearray(raw_bytes(code.text))
    raw[byte_index] ^= 0x01
    with pytest.raises(CodeError) as info:
        codes.verify(to_text(bytes(raw)), keys, now=NOW)
    assert info.value.kind == "forged"


def test_flipped_version_is_malformed_and_flipped_kid_is_unknown(
    code: IssuedCode, keys: dict[str, SM2PublicKey]
) -> None:
    for byte_index, expected in [(0, "malformed"), (1, "unknown-key"), (2, "unknown-key"), (4, "unknown-key")]:
        raw = bytearray(raw_bytes(code.text))
        raw[byte_index] ^= 0x80
        assert kind_of(to_text(bytes(raw)), keys) == expected


def test_every_single_character_change_is_rejected(code: IssuedCode, keys: dict[str, SM2PublicKey]) -> None:
    original = raw_bytes(code.text)
    for position in range(4, len(code.text)):
        current = code.text[position]
        replacement = BASE32_ALPHABET[(BASE32_ALPHABET.index(current) + 1 + position) % 32]
        if replacement == current:
            replacement = BASE32_ALPHABET[(BASE32_ALPHABET.index(current) + 1) % 32]
        tampered = code.text[:position] + replacement + code.text[position + 1 :]
        raw = raw_bytes(tampered)
        # What the change touched decides which check fires first.
        if to_text(raw) != tampered or raw[0] != original[0]:
            expected = "malformed"  # version byte, or only the unused trailing bits of the last character
        elif raw[1:5] != original[1:5]:
            expected = "unknown-key"
        else:
            expected = "forged"
        assert kind_of(tampered, keys) == expected, (position, tampered)


def test_unknown_key(code: IssuedCode) -> None:
    other = SM2PrivateKey.generate()
    assert kind_of(code.text, codes.keyring([other.public_key()])) == "unknown-key"
    assert kind_of(code.text, {}) == "unknown-key"


def test_signed_by_another_key_with_the_same_kid_is_forged(code: IssuedCode) -> None:
    # A mapping entry under the right kid but holding the wrong key must not let the code through.
    impostor = SM2PrivateKey.generate().public_key()
    assert kind_of(code.text, {code.kid: impostor}) == "forged"


def test_expiry_and_leeway(code: IssuedCode, keys: dict[str, SM2PublicKey]) -> None:
    exp = code.expires_at
    assert kind_of(code.text, keys, now=exp) == "ok"
    assert kind_of(code.text, keys, now=exp + 5) == "ok"
    assert kind_of(code.text, keys, now=exp + 5.5) == "expired"
    assert kind_of(code.text, keys, now=exp + 3600) == "expired"
    codes.verify(code.text, keys, now=exp + 30, leeway=30)
    with pytest.raises(CodeError) as info:
        codes.verify(code.text, keys, now=exp + 1, leeway=0)
    assert info.value.kind == "expired"
    with pytest.raises(ValueError):
        codes.verify(code.text, keys, now=NOW, leeway=-1)


def test_check_order(code: IssuedCode, keys: dict[str, SM2PublicKey]) -> None:
    late = code.expires_at + 3600
    forged = bytearray(raw_bytes(code.text))
    forged[10] ^= 0x01
    assert kind_of(to_text(bytes(forged)), keys, now=late) == "forged"  # forged beats expired
    assert kind_of(code.text, {}, now=late) == "unknown-key"  # unknown key beats expired
    assert kind_of(code.text[:-1], {}, now=late) == "malformed"  # malformed beats everything


def test_other_version_is_malformed_even_if_signed(issuer: SM2PrivateKey, keys: dict[str, SM2PublicKey]) -> None:
    signed = bytes([2]) + codes.key_id(issuer.public_key()) + bytes(16) + int(NOW + 60).to_bytes(4, "big")
    text = to_text(signed + der_to_raw(issuer.sign(signed)))
    assert len(text) == 147
    assert kind_of(text, keys) == "malformed"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SZT1",
        "hello",
        "SZT1" + "A" * 142,
        "SZT1" + "A" * 144,
        "SZT1" + "1" * 143,  # '1' is not base32
        "X" * 401,
        "SZT1" + "A" * 396,  # over the 400-character cap
        "https://example.com/?code=SZT1AAAA",
    ],
)
def test_garbage_is_malformed(text: str, keys: dict[str, SM2PublicKey]) -> None:
    assert kind_of(text, keys) == "malformed"
    with pytest.raises(CodeError) as info:
        codes.parse(text)
    assert info.value.kind == "malformed"


def test_case_and_prefix_variants_are_malformed(code: IssuedCode, keys: dict[str, SM2PublicKey]) -> None:
    assert kind_of(code.text.lower(), keys) == "malformed"
    assert kind_of("SZT2" + code.text[4:], keys) == "malformed"
    assert kind_of(code.text + "=", keys) == "malformed"
    assert kind_of(" " + code.text, keys) == "malformed"
    assert kind_of(code.text, keys) == "ok"


def test_parse_checks_structure_only(code: IssuedCode) -> None:
    raw = bytearray(raw_bytes(code.text))
    raw[40] ^= 0xFF  # inside the signature
    parsed = codes.parse(to_text(bytes(raw)))
    assert parsed.code_id == code.code_id
    assert codes.parse(code.text).expires_at == code.expires_at  # parse ignores the clock


def test_code_error_carries_kind_and_message() -> None:
    with pytest.raises(CodeError) as info:
        codes.parse("nope")
    assert info.value.kind == "malformed"
    assert info.value.message == str(info.value)
    assert "malformed" in repr(info.value)


# --------------------------------------------------------------------------- independent SM2 check (gmssl)


def test_gmssl_verifies_with_public_key_only(issuer: SM2PrivateKey) -> None:
    verifier = gmssl_verifier(issuer.public_key())
    for _ in range(3):
        raw = raw_bytes(codes.issue(issuer, now=NOW).text)
        signed, signature = raw[:25], raw[25:]
        assert verifier.verify_with_sm3(signature.hex(), signed)
        assert not verifier.verify_with_sm3(signature.hex(), signed[:-1] + bytes([signed[-1] ^ 1]))


# --------------------------------------------------------------------------- QR


def test_qr_is_alphanumeric_version_at_most_10(code: IssuedCode) -> None:
    assert QRData(code.text.encode()).mode == MODE_ALPHA_NUM  # what qrcode would pick on its own, too
    version = qr.qr_version(code.text)
    assert 1 <= version <= 10
    assert version == 6  # 147 alphanumeric characters: version 6-M holds 154


def test_qr_refuses_what_does_not_fit() -> None:
    with pytest.raises(qr.QRTooLargeError):
        qr.qr_version("A" * 400)
    with pytest.raises(ValueError):
        qr.render_png("lowercase")
    with pytest.raises(ValueError):
        qr.render_svg("苏证通")


def test_png_decodes_with_zxing(code: IssuedCode, keys: dict[str, SM2PublicKey]) -> None:
    png = qr.render_png(code.text)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    version = qr.qr_version(code.text)
    assert image.size == ((17 + 4 * version + 2 * 4) * 8,) * 2
    found = decode_qr(image)
    assert len(found) == 1
    assert found[0].text == code.text
    assert found[0].ec_level == "M"
    extra = found[0].extra
    assert isinstance(extra, dict)
    assert int(extra["Version"]) == version
    # What a scanner reads verifies.
    assert codes.verify(found[0].text, keys, now=NOW).code_id == code.code_id


def test_png_box_size_and_border(code: IssuedCode) -> None:
    image = Image.open(io.BytesIO(qr.render_png(code.text, box_size=4, border=2)))
    modules = 17 + 4 * qr.qr_version(code.text)
    assert image.size == ((modules + 4) * 4,) * 2
    assert [b.text for b in decode_qr(image)] == [code.text]


def _svg_squares(path_data: str) -> Iterator[tuple[float, float, float, float]]:
    """The unit squares qrcode's path drawer emits: ``M x,y H x2 V y2 H x z``."""
    number = r"(\d+(?:\.\d+)?)"
    square = re.compile(rf"M{number},{number}H{number}V{number}H{number}z")
    position = 0
    for match in square.finditer(path_data):
        assert match.start() == position, "unexpected SVG path syntax"
        position = match.end()
        x, y, x2, y2 = (float(match.group(i)) for i in range(1, 5))
        yield x, y, x2, y2
    assert position == len(path_data)


def test_svg_is_valid_and_decodes(code: IssuedCode) -> None:
    svg = qr.render_svg(code.text)
    root = ET.fromstring(svg)  # noqa: S314 - our own renderer's output, not untrusted input
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    paths = [el for el in root.iter() if el.tag in (f"{ns}path", "path")]
    assert len(paths) == 1
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    # zxing reads bitmaps only: rasterise the path's squares ourselves, 8 px per unit, then decode.
    scale = 8
    image = Image.new("L", (int(width * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    squares = list(_svg_squares(paths[0].attrib["d"]))
    assert squares
    for x, y, x2, y2 in squares:
        draw.rectangle([x * scale, y * scale, x2 * scale - 1, y2 * scale - 1], fill=0)
    assert [b.text for b in decode_qr(image)] == [code.text]
