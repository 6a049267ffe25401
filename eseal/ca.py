"""Our CAs and the certificates they issue: application → review → issue → renew → suspend/resume → revoke, CRLs.

Two hierarchies, each a root and an issuing CA: SM2 (SM2-with-SM3, national OIDs) and RSA-2048 (sha256WithRSA,
for PAdES that every PDF validator accepts); under the RSA root also an ECDSA P-256 issuing CA `ec-issuing` (for
PAdES with ECDSA: relying parties keep the one RSA root they already trust). Every CA key is a key index in the
signing server. Certificates are cloud (the key generated at a key index of the signing server) or UKey (the
holder's public key registered). Review is automatic when the applicant is real-name verified. Suspended
certificates are on the CRL with reason certificateHold, revoked ones with their reason; CRLs are rebuilt on every
change and cached in Redis.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any, Literal

from asn1crypto import keys as akeys
from asn1crypto import x509

from core import audit
from core.problems import ProblemError, invalid, not_found
from core.resources import Resources
from eseal import keys, logs, repo, x509build
from eseal.models import Certificate
from eseal.signer_client import KeyAlgorithm, SignAlgorithm

ROOT_YEARS = 20
ISSUING_YEARS = 10
CRL_HOURS = 24
ISSUING = {"SM2": "sm2-issuing", "RSA": "rsa-issuing", "EC": "ec-issuing"}
KEY_ALGORITHM: dict[str, KeyAlgorithm] = {"SM2": "SM2", "RSA": "RSA2048", "EC": "EC-P256"}
_SIGN_ALGORITHM: dict[str, SignAlgorithm] = {"RSA": "RSA-SHA256", "EC": "ECDSA-SHA256"}
MAKER = "system:seal-maker"
REASONS = {"key_compromise", "ca_compromise", "affiliation_changed", "superseded", "cessation_of_operation"}
_CRL_KEY = "eseal:crl:{}"
_LOCK = 7200901


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def crl_url(res: Resources, ca_id: str) -> str:
    return f"{res.settings.base_url}/eseal/v1/crl/{ca_id}.crl"


def signer_for(res: Resources, key_index: int, algorithm: str) -> x509build.Sign:
    client = keys.signer(res)

    async def sign(data: bytes) -> bytes:
        if algorithm == "SM2":
            return await client.sign(key_index, data)
        digest = hashlib.sha256(data).digest()
        return await client.sign(key_index, digest=digest, algorithm=_SIGN_ALGORITHM[algorithm])

    return sign


async def ensure_cas(res: Resources) -> None:
    """Create the hierarchies and the seal-maker certificate once (idempotent, safe across replicas)."""
    await _ensure_hierarchies(res)
    if not await repo.certificate_by_applicant(res.db, MAKER):
        cert = await apply(
            res,
            subject_kind="org",
            subject_name="苏证通电子印章制作系统",
            subject_org="江苏省公安厅",
            applicant=MAKER,
            real_name_verified=True,
        )
        assert cert.status == "issued"


async def _ensure_hierarchies(res: Resources) -> None:
    if {"sm2-issuing", "rsa-issuing", "ec-issuing"} <= {r["id"] for r in await repo.cas(res.db)}:
        return
    async with res.db.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK)
        try:
            have = {r["id"] for r in await repo.cas(conn)}
            for algorithm, priority in (("SM2", 10), ("RSA", 20)):
                prefix = algorithm.lower()
                if f"{prefix}-root" not in have:
                    await _make_ca(res, conn, f"{prefix}-root", algorithm, None, priority)
                if f"{prefix}-issuing" not in have:
                    await _make_ca(res, conn, f"{prefix}-issuing", algorithm, f"{prefix}-root", priority)
            if "ec-issuing" not in have:  # added later than the others: existing installations get it here
                await _make_ca(res, conn, "ec-issuing", "EC", "rsa-root", 20)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)


async def _make_ca(res: Resources, conn: Any, ca_id: str, algorithm: str, parent: str | None, priority: int) -> None:
    key = await keys.new_key(res, KEY_ALGORITHM[algorithm])
    now = _now()
    label = {
        "sm2-root": "SM2 根CA",
        "sm2-issuing": "SM2 签发CA",
        "rsa-root": "RSA Root CA",
        "rsa-issuing": "RSA CA",
        "ec-issuing": "ECDSA CA",
    }
    subject = x509build.name(f"苏证通 {label[ca_id]}", org="江苏省公安厅", unit="苏证通")
    if parent is None:
        issuer, issuer_spki, sign = subject, key.public_der, signer_for(res, key.index, algorithm)
        issuer_algorithm, years, path_len = algorithm, ROOT_YEARS, 1
    else:
        parent_row = await repo.ca(conn, parent)
        assert parent_row is not None
        parent_cert = x509.Certificate.load(bytes(parent_row["cert_der"]))
        issuer, issuer_spki = parent_cert.subject, x509build.spki_of(bytes(parent_row["cert_der"]))
        issuer_algorithm = parent_row["algorithm"]  # ec-issuing is signed by the RSA root
        sign = signer_for(res, parent_row["key_index"], issuer_algorithm)
        years, path_len = ISSUING_YEARS, 0
    der = await x509build.build_certificate(
        subject=subject,
        subject_spki=key.public_der,
        issuer=issuer,
        issuer_spki=issuer_spki,
        issuer_algorithm=issuer_algorithm,
        sign=sign,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365 * years),
        serial=x509build.new_serial(),
        ca=True,
        path_len=path_len,
        crl_url=crl_url(res, parent) if parent else "",
    )
    await repo.insert_ca(conn, ca_id, algorithm, parent, key.index, der, priority)
    await logs.append(conn, "cert", "ca.create", actor="system", detail={"ca": ca_id, "key_index": key.index})


def to_model(r: Any) -> Certificate:
    return Certificate(
        id=r["id"],
        serial=str(r["serial"]) if r["serial"] is not None else None,
        subject_kind=r["subject_kind"],
        subject_name=r["subject_name"],
        subject_org=r["subject_org"],
        usage=r["usage"],
        form=r["form"],
        term=r["term"],
        algorithm=r["algorithm"],
        status=r["status"],
        ca_id=r["ca_id"],
        not_before=r["not_before"],
        not_after=r["not_after"],
        revoked_at=r["revoked_at"],
        revoke_reason=r["revoke_reason"],
        created_at=r["created_at"],
    )


async def apply(
    res: Resources,
    *,
    subject_kind: Literal["org", "person"],
    subject_name: str,
    subject_org: str = "",
    usage: Literal["sign", "encrypt"] = "sign",
    form: Literal["cloud", "ukey"] = "cloud",
    algorithm: Literal["SM2", "RSA", "EC"] = "SM2",
    term: Literal["fixed", "event"] = "fixed",
    days: int | None = None,
    public_key: bytes | None = None,
    applicant: str = "",
    real_name_verified: bool = False,
) -> Certificate:
    """A certificate application; approved and issued at once when the applicant is real-name verified."""
    if not subject_name.strip() or len(subject_name) > 64:
        raise invalid("subject_name", "1-64 characters")
    if form == "ukey":
        if public_key is None:
            raise invalid("public_key", "a UKey certificate needs the holder's public key (SPKI DER)")
        try:
            found = x509build.algorithm_of(akeys.PublicKeyInfo.load(public_key).dump())
        except ValueError as exc:
            raise invalid("public_key", "not a SubjectPublicKeyInfo") from exc
        if found != algorithm:
            raise invalid("public_key", f"an {found} key for an {algorithm} certificate")
    valid_days = days if days is not None else (7 if term == "event" else 365 * 2)
    if not 1 <= valid_days <= 365 * 5:
        raise invalid("days", "1 day to 5 years")
    row = await repo.insert_certificate(
        res.db,
        id=uuid.uuid4(),
        subject_kind=subject_kind,
        subject_name=subject_name.strip(),
        subject_org=subject_org,
        usage=usage,
        form=form,
        term=term,
        algorithm=algorithm,
        public_key=public_key,
        status="applied",
        days=valid_days,
        applicant=applicant,
    )
    await logs.append(res.db, "cert", "apply", actor=applicant, detail={"id": str(row["id"]), "form": form})
    if real_name_verified:
        return await review(res, row["id"], approve=True, reviewer="auto:real-name")
    return to_model(row)


async def _row(res: Resources, cert_id: uuid.UUID) -> Any:
    row = await repo.certificate(res.db, cert_id)
    if row is None:
        raise not_found("certificate")
    return row


def _state(row: Any, *allowed: str) -> None:
    if row["status"] not in allowed:
        raise ProblemError(
            409, "certificate-state", "Not allowed in this state", "证书当前状态不允许此操作", f"status {row['status']}"
        )


async def review(res: Resources, cert_id: uuid.UUID, *, approve: bool, reviewer: str, note: str = "") -> Certificate:
    row = await _row(res, cert_id)
    _state(row, "applied")
    if row["applicant"] and row["applicant"] == reviewer:  # four-eyes: the applicant never reviews it
        raise ProblemError(
            403, "own-submission", "You cannot review what you submitted", "不能审核本人提交的申请", "four-eyes"
        )
    await audit.record(
        res.db,
        actor=reviewer,
        action="eseal.cert.review",
        target=str(cert_id),
        detail={"approve": approve, "note": note},
    )
    if not approve:
        return to_model(await repo.update_certificate(res.db, cert_id, status="rejected"))
    await repo.update_certificate(res.db, cert_id, status="approved")
    return await issue(res, cert_id)


async def issue(res: Resources, cert_id: uuid.UUID) -> Certificate:
    await _ensure_hierarchies(res)
    row = await _row(res, cert_id)
    _state(row, "approved")
    key_index = row["key_index"]
    if row["form"] == "cloud":
        key = await keys.new_key(res, KEY_ALGORITHM[row["algorithm"]])
        key_index, spki = key.index, key.public_der
    else:
        spki = bytes(row["public_key"])
    now = _now()
    der, serial, ca_id = await _sign_cert(res, row, spki, now)
    updated = await repo.update_certificate(
        res.db,
        cert_id,
        status="issued",
        key_index=key_index,
        public_key=spki,
        cert_der=der,
        serial=serial,
        ca_id=ca_id,
        not_before=now,
        not_after=now + dt.timedelta(days=row["days"]),
    )
    await logs.append(res.db, "cert", "issue", actor="ca", cert_serial=str(serial), detail={"ca": ca_id})
    return to_model(updated)


async def _sign_cert(res: Resources, row: Any, spki: bytes, now: dt.datetime) -> tuple[bytes, int, str]:
    ca_id = ISSUING[row["algorithm"]]
    ca_row = await repo.ca(res.db, ca_id)
    assert ca_row is not None
    ca_der = bytes(ca_row["cert_der"])
    serial = x509build.new_serial()
    org = row["subject_org"] or row["subject_name"]
    der = await x509build.build_certificate(
        subject=x509build.name(row["subject_name"], org=org, unit="个人" if row["subject_kind"] == "person" else ""),
        subject_spki=spki,
        issuer=x509.Certificate.load(ca_der).subject,
        issuer_spki=x509build.spki_of(ca_der),
        issuer_algorithm=row["algorithm"],
        sign=signer_for(res, ca_row["key_index"], row["algorithm"]),
        not_before=now,
        not_after=now + dt.timedelta(days=row["days"]),
        serial=serial,
        usage=row["usage"],
        crl_url=crl_url(res, ca_id),
    )
    return der, serial, ca_id


TSA_YEARS = 2


async def issue_tsa_certificate(res: Resources, spki: bytes, *, name: str = "苏证通时间戳服务") -> bytes:
    """A time-stamping authority's certificate under `rsa-issuing` (RSA key; critical EKU timeStamping, RFC 3161
    2.3). Issued to an outside key holder like a UKey certificate, but kept with the TSA, not as a row here."""
    if x509build.algorithm_of(spki) != "RSA":
        raise invalid("public_key", "the TSA key must be RSA (it certifies under rsa-issuing)")
    await _ensure_hierarchies(res)
    ca_row = await repo.ca(res.db, ISSUING["RSA"])
    assert ca_row is not None
    ca_der = bytes(ca_row["cert_der"])
    now, serial = _now(), x509build.new_serial()
    der = await x509build.build_certificate(
        subject=x509build.name(name, org="江苏省公安厅", unit="苏证通"),
        subject_spki=spki,
        issuer=x509.Certificate.load(ca_der).subject,
        issuer_spki=x509build.spki_of(ca_der),
        issuer_algorithm="RSA",
        sign=signer_for(res, ca_row["key_index"], "RSA"),
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=365 * TSA_YEARS),
        serial=serial,
        extended_key_usage=("time_stamping",),
        crl_url=crl_url(res, ISSUING["RSA"]),
    )
    await logs.append(res.db, "cert", "tsa.issue", actor="ca", cert_serial=str(serial), detail={"subject": name})
    return der


async def renew(res: Resources, cert_id: uuid.UUID, *, days: int | None = None, actor: str = "") -> Certificate:
    """A new certificate (new serial, new validity) for the same key; the old serial is superseded on the CRL."""
    row = await _row(res, cert_id)
    _state(row, "issued")
    if days is not None:
        if not 1 <= days <= 365 * 5:
            raise invalid("days", "1 day to 5 years")
        row = await repo.update_certificate(res.db, cert_id, days=days)
    old_serial = str(row["serial"])
    now = _now()
    der, serial, _ca_id = await _sign_cert(res, row, bytes(row["public_key"]), now)
    updated = await repo.update_certificate(
        res.db, cert_id, cert_der=der, serial=serial, not_before=now, not_after=now + dt.timedelta(days=row["days"])
    )
    await logs.append(res.db, "cert", "renew", actor=actor, cert_serial=str(serial), detail={"old": old_serial})
    return to_model(updated)


async def _change(
    res: Resources, cert_id: uuid.UUID, action: str, actor: str, allowed: tuple[str, ...], **values: Any
) -> Certificate:
    row = await _row(res, cert_id)
    _state(row, *allowed)
    updated = await repo.update_certificate(res.db, cert_id, **values)
    await audit.record(res.db, actor=actor, action=f"eseal.cert.{action}", target=str(row["serial"]))
    await logs.append(res.db, "cert", action, actor=actor, cert_serial=str(row["serial"]))
    await res.redis.delete(_CRL_KEY.format(row["ca_id"]))
    return to_model(updated)


async def suspend(res: Resources, cert_id: uuid.UUID, *, actor: str) -> Certificate:
    return await _change(
        res,
        cert_id,
        "suspend",
        actor,
        ("issued",),
        status="suspended",
        revoked_at=_now(),
        revoke_reason="certificate_hold",
    )


async def resume(res: Resources, cert_id: uuid.UUID, *, actor: str) -> Certificate:
    return await _change(
        res, cert_id, "resume", actor, ("suspended",), status="issued", revoked_at=None, revoke_reason=""
    )


async def revoke(
    res: Resources, cert_id: uuid.UUID, *, actor: str, reason: str = "cessation_of_operation"
) -> Certificate:
    if reason not in REASONS:
        raise invalid("reason", f"one of {sorted(REASONS)}")
    return await _change(
        res,
        cert_id,
        "revoke",
        actor,
        ("issued", "suspended"),
        status="revoked",
        revoked_at=_now(),
        revoke_reason=reason,
    )


async def crl(res: Resources, ca_id: str) -> bytes:
    """The CA's current CRL (DER), rebuilt after any status change."""
    cached = await res.redis.get(_CRL_KEY.format(ca_id))
    if isinstance(cached, bytes):
        return cached
    ca_row = await repo.ca(res.db, ca_id)
    if ca_row is None or ca_row["key_index"] is None:
        raise not_found("CA")
    ca_der = bytes(ca_row["cert_der"])
    revoked = [
        (int(r["serial"]), r["revoked_at"], r["revoke_reason"]) for r in await repo.revoked_serials(res.db, ca_id)
    ]
    now = _now()
    der = await x509build.build_crl(
        issuer=x509.Certificate.load(ca_der).subject,
        issuer_spki=x509build.spki_of(ca_der),
        issuer_algorithm=ca_row["algorithm"],
        sign=signer_for(res, ca_row["key_index"], ca_row["algorithm"]),
        number=await repo.bump_crl_number(res.db, ca_id),
        revoked=revoked,
        this_update=now,
        next_update=now + dt.timedelta(hours=CRL_HOURS),
    )
    await res.redis.set(_CRL_KEY.format(ca_id), der, ex=3600)
    return der


async def trusted_roots(res: Resources) -> list[tuple[str, bytes]]:
    """(id, DER) of every trusted root, highest priority (lowest number) first."""
    return [(r["id"], bytes(r["cert_der"])) for r in await repo.cas(res.db) if r["parent_id"] is None and r["trusted"]]


async def add_trusted_root(res: Resources, ca_id: str, cert_der: bytes, *, priority: int, actor: str) -> None:
    """An outside root (e.g. another province's CA) trusted for verification, in priority order."""
    try:
        cert = x509.Certificate.load(cert_der)
        algorithm = x509build.algorithm_of(cert.public_key.dump())
    except ValueError as exc:
        raise invalid("certificate", "not a DER certificate") from exc
    await repo.insert_ca(res.db, ca_id, algorithm, None, None, cert_der, priority)
    await audit.record(res.db, actor=actor, action="eseal.ca.trust", target=ca_id, detail={"priority": priority})


async def set_trust(res: Resources, ca_id: str, *, trusted: bool, priority: int, actor: str) -> None:
    if not await repo.set_trust(res.db, ca_id, trusted, priority):
        raise not_found("CA")
    await audit.record(
        res.db, actor=actor, action="eseal.ca.trust", target=ca_id, detail={"trusted": trusted, "priority": priority}
    )


async def chain_of(res: Resources, ca_id: str) -> list[bytes]:
    """Issuing CA then its root, DER."""
    out: list[bytes] = []
    current: str | None = ca_id
    while current:
        row = await repo.ca(res.db, current)
        if row is None:
            break
        out.append(bytes(row["cert_der"]))
        current = row["parent_id"]
    return out


async def get(res: Resources, cert_id: uuid.UUID) -> Certificate:
    return to_model(await _row(res, cert_id))


async def der(res: Resources, cert_id: uuid.UUID) -> bytes:
    row = await _row(res, cert_id)
    if row["cert_der"] is None:
        raise not_found("certificate (not issued)")
    return bytes(row["cert_der"])
