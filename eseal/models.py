"""Models of the electronic-seal domain (msgspec Structs): what the service returns and the API speaks."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

CertStatus = Literal["applied", "approved", "rejected", "issued", "suspended", "revoked"]
SealStatus = Literal[
    "applied", "approved", "rejected", "made", "filing", "registered", "published", "suspended", "revoked", "destroyed"
]
SealKind = Literal["official", "contract", "finance", "personal"]
Shape = Literal["round", "oval", "square", "upload"]
Verdict = Literal["pass", "fail", "warn", "absent"]

Name = Annotated[str, Meta(min_length=1, max_length=64)]


class Certificate(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    serial: str | None
    subject_kind: Literal["org", "person"]
    subject_name: str
    subject_org: str
    usage: Literal["sign", "encrypt"]
    form: Literal["cloud", "ukey"]
    term: Literal["fixed", "event"]
    algorithm: Literal["SM2", "RSA", "EC"]
    status: CertStatus
    ca_id: str | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None
    revoke_reason: str
    created_at: dt.datetime


class Seal(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    code: str | None
    kind: SealKind
    name: str
    org_name: str
    shape: Shape
    status: SealStatus
    valid_from: dt.datetime | None
    valid_to: dt.datetime | None
    cert_serials: list[str] = msgspec.field(default_factory=list)
    created_at: dt.datetime


class Check(msgspec.Struct):
    name: Literal[
        "format",
        "signature",
        "cert_seal_match",
        "seal_validity",
        "certificate",
        "signing_time",
        "integrity",
        "timestamp",
    ]
    verdict: Verdict
    detail: str


class SignatureReport(msgspec.Struct, kw_only=True):
    field: str
    kind: Literal["pades", "sm2-ses", "sm2-sign", "unknown"]
    signer: str
    seal_code: str
    seal_name: str
    signed_at: str
    valid: bool
    checks: list[Check]
    confirmed: Annotated[
        bool,
        Meta(description="false: 无法确认 could not confirm (a seal not ours and the seal platform did not answer)"),
    ] = True
    recognised_by: Annotated[
        str, Meta(description="互认: the province that filed this seal at the seal platform (a seal not ours)")
    ] = ""


class VerifyResult(msgspec.Struct, kw_only=True):
    document_sha256: str
    signatures: list[SignatureReport]
    valid: bool
    format: Literal["pdf", "ofd"] = "pdf"  # which format the document was read as
    confirmed: Annotated[
        bool, Meta(description="false: 无法确认 could not confirm — neither valid nor invalid (see the signatures)")
    ] = True


class SignPosition(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where a seal goes, the same for PDF and OFD: `x`, `y` in points (1/72 in) from the page's lower-left
    corner to the seal's lower-left corner, `size` its width in points; or a `keyword` the seal is centred on
    (with `page`, the keyword must be on that page); or `cross_page` strips on the right edge of every page."""

    seal_code: Annotated[str, Meta(min_length=1, max_length=40)]
    page: (
        Annotated[
            int,
            Meta(
                ge=0,
                le=9999,
                description="0-based; default the first page (coordinates) or the first occurrence (keyword)",
            ),
        ]
        | None
    ) = None
    x: Annotated[float, Meta(ge=0, le=14400)] | None = None
    y: Annotated[float, Meta(ge=0, le=14400)] | None = None
    keyword: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    cross_page: bool = False
    size: Annotated[float, Meta(ge=20, le=300)] = 119.0
    ofd_type: Annotated[
        Literal["Seal", "Sign"],
        Meta(
            description="OFD only: Seal (电子签章, GB/T 38540 SES_Signature with the impression) or Sign "
            "(数字签名, GB/T 35275 SignedData, no impression)"
        ),
    ] = "Seal"


# pades: PAdES with the seal's RSA-2048 certificate; pades-ecdsa: PAdES with its ECDSA P-256 certificate;
# sm2: SM2/SM3 with a GB/T 38540 SES_Signature. OFD is always SM2/SM3 (GB/T 38540 / GB/T 35275), whatever is given.
DocAlgorithm = Annotated[
    Literal["pades", "pades-ecdsa", "sm2"],
    Meta(description="pades (RSA-2048), pades-ecdsa (ECDSA P-256) or sm2 (GB/T 38540 SES_Signature)"),
]


class SignRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    document: Annotated[
        str, Meta(min_length=8, max_length=40_000_000, description="the PDF or OFD, base64 (told apart by content)")
    ]
    seals: Annotated[list[SignPosition], Meta(min_length=1, max_length=20)]
    algorithm: DocAlgorithm = "pades"
    user_id: Annotated[str, Meta(max_length=64)] | None = None
    seal_password: Annotated[str, Meta(max_length=128)] | None = None
    name: Annotated[str, Meta(max_length=200)] = "document.pdf"


class SignResult(msgspec.Struct, kw_only=True):
    document: str  # base64
    sha256: str
    signatures: int


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    items: Annotated[list[SignRequest], Meta(min_length=1, max_length=50)]


class BatchResult(msgspec.Struct, kw_only=True):
    results: list[SignResult | None]
    errors: list[str | None]


class LogEntry(msgspec.Struct, kw_only=True):
    seq: int
    at: dt.datetime
    kind: str
    actor: str
    action: str
    seal_code: str
    cert_serial: str
    doc_name: str
    doc_hash: str
    result: str
    ip: str


class LogPage(msgspec.Struct):
    items: list[LogEntry]
    next_cursor: str | None


class Stats(msgspec.Struct, kw_only=True):
    seals_by_kind: dict[str, int]
    seals_by_status: dict[str, int]
    certificates_by_form: dict[str, int]
    certificates_by_status: dict[str, int]
    signatures_by_day: dict[str, int]
    verifications: int


class FillRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    template: Literal["certificate", "licence"]
    fields: Annotated[
        dict[Annotated[str, Meta(max_length=32)], Annotated[str, Meta(max_length=400)]], Meta(max_length=20)
    ]
    seal_code: Annotated[str, Meta(min_length=1, max_length=40)]
    algorithm: DocAlgorithm = "pades"
    name: Annotated[str, Meta(max_length=200)] = "certificate.pdf"
    format: Annotated[Literal["pdf", "ofd"], Meta(description="the document drawn: PDF or OFD")] = "pdf"
