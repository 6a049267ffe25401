"""Sealing a document for a business app (and, optionally, on behalf of one of its users), and verifying one.

Files on disk in and out: each seal is one incremental revision written to a temporary file next to the output,
so memory stays flat whatever the PDF's size. PAdES uses the seal's RSA certificate, SM2 its SM2 certificate;
the private keys are key indexes in the signing server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from core.problems import invalid
from core.resources import Resources
from eseal import (
    ca,
    keys,
    logs,
    ofd,
    ofdsign,
    ofdverify,
    pdfsign,
    pdftext,
    pdfverify,
    repo,
    sealplatform,
    seals,
    timestamps,
)
from eseal.models import SignPosition, SignRequest, SignResult, VerifyResult
from eseal.placement import keyword_hits
from eseal.signer_client import SignAlgorithm

T = TypeVar("T")
_CERT_ALGORITHM = {"pades": "RSA", "pades-ecdsa": "EC", "sm2": "SM2"}
_RAW_ALGORITHM: dict[str, SignAlgorithm] = {"RSA": "RSA-SHA256", "EC": "ECDSA-SHA256"}


async def _cert_for(res: Resources, seal_row: Any, algorithm: str) -> Any:
    wanted = _CERT_ALGORITHM.get(algorithm)
    if wanted is None:
        raise invalid("algorithm", "pades, pades-ecdsa or sm2")
    for cert in await repo.seal_cert_rows(res.db, seal_row["id"]):
        if cert["status"] == "issued" and cert["algorithm"] == wanted and cert["key_index"] is not None:
            return cert
    raise invalid("seal_code", f"seal {seal_row['code']} has no issued {wanted} cloud certificate")


async def _log_seal(
    res: Resources,
    app_code: str,
    pos: SignPosition,
    cert: Any,
    doc_name: str,
    doc_hash: str,
    ip: str,
    detail: dict[str, Any],
    *,
    timestamped: bool,
) -> None:
    """The sealing log entry of one seal placed on a document (PDF or OFD)."""
    await logs.append(
        res.db,
        "sign",
        "sign",
        actor=app_code,
        seal_code=pos.seal_code,
        cert_serial=str(cert["serial"]),
        doc_name=doc_name,
        doc_hash=doc_hash,
        ip=ip,
        detail={**detail, "cross_page": pos.cross_page, "timestamp": timestamped},
    )


def _placement(src: Path, pos: SignPosition) -> pdfsign.Placement:
    half = pos.size / 2
    if pos.keyword:
        with src.open("rb") as f:
            hits = pdftext.find_keyword(f, pos.keyword)
        hit = keyword_hits(hits, pos)[0]
        # Centre the seal on the keyword (its first character, lifted to the middle of the line).
        cx, cy = hit.x + hit.font_size * len(pos.keyword) / 2, hit.y + hit.font_size / 3
        return pdfsign.Placement(hit.page, max(0.0, cx - half), max(0.0, cy - half), pos.size, pos.size)
    if pos.x is None or pos.y is None:
        raise invalid("x", "give x and y, or a keyword")
    return pdfsign.Placement(pos.page or 0, pos.x, pos.y, pos.size, pos.size)


async def sign_file(
    res: Resources,
    src: Path,
    out: Path,
    positions: list[SignPosition],
    *,
    app_code: str,
    algorithm: str = "pades",
    user_id: str | None = None,
    password: str | None = None,
    doc_name: str = "document.pdf",
    ip: str = "",
) -> int:
    """Apply every seal in order, each an incremental signature; returns the number of signatures."""
    if sum(p.cross_page for p in positions) > 1:
        raise invalid("cross_page", "one cross-page seal per document")
    # The cross-page strips change every page, which is only allowed before the first signature: sign it first.
    positions = sorted(positions, key=lambda p: not p.cross_page)
    client = keys.signer(res)
    stamper = await timestamps.timestamper(res)
    current = src
    temps: list[Path] = []
    try:
        for n, pos in enumerate(positions, start=1):
            seal_row = await seals.usable(res, pos.seal_code, app_code=app_code, user_id=user_id, password=password)
            cert = await _cert_for(res, seal_row, algorithm)
            placement = _placement(current, pos)
            fd, tmp_name = tempfile.mkstemp(prefix=".seal-", suffix=".pdf", dir=out.parent)
            os.close(fd)
            tmp = Path(tmp_name)
            temps.append(tmp)
            field = f"Seal{n}-{pos.seal_code}-{os.urandom(3).hex()}"
            key_index = cert["key_index"]
            with current.open("rb") as fin, tmp.open("w+b") as fout:  # noqa: ASYNC230 - pyhanko does sync I/O
                if algorithm != "sm2":
                    raw: SignAlgorithm = _RAW_ALGORITHM[cert["algorithm"]]

                    async def sign_digest(digest: bytes, key_index: int = key_index, raw: SignAlgorithm = raw) -> bytes:
                        return await client.sign(key_index, digest=digest, algorithm=raw)

                    await pdfsign.sign_pades(
                        fin,
                        fout,
                        field_name=field,
                        placement=placement,
                        seal_png=bytes(seal_row["image_png"]),
                        cert=bytes(cert["cert_der"]),
                        chain=await ca.chain_of(res, cert["ca_id"]),
                        sign_digest=sign_digest,
                        reason=f"电子印章 {pos.seal_code}",
                        cross_page=pos.cross_page,
                        timestamper=stamper,
                    )
                else:

                    async def sign_sm2(data: bytes, key_index: int = key_index) -> bytes:
                        return await client.sign(key_index, data)

                    await pdfsign.sign_sm2(
                        fin,
                        fout,
                        field_name=field,
                        placement=placement,
                        seal_png=bytes(seal_row["image_png"]),
                        seal_der=await seals.standard_seal(res, seal_row),
                        seal_code=pos.seal_code,
                        cert=bytes(cert["cert_der"]),
                        sign_sm2=sign_sm2,
                        cross_page=pos.cross_page,
                        timestamp=timestamps.ses_token(stamper) if stamper is not None else None,
                    )
            current = tmp
            await _log_seal(
                res,
                app_code,
                pos,
                cert,
                doc_name,
                pdfsign.digest_file(str(tmp)),
                ip,
                {"user": user_id or "", "algorithm": algorithm, "page": placement.page},
                timestamped=stamper is not None,
            )
        os.replace(current, out)
        return len(positions)
    finally:
        for t in temps:
            t.unlink(missing_ok=True)


MAX_PDF = 30 * 1024 * 1024


def work_dir(res: Resources) -> Path:
    path = res.settings.var_path / "eseal" / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def decode_document(text: str, field: str = "document") -> bytes:
    """Base64 PDF or OFD (told apart by content: `%PDF-`, or a zip holding OFD.xml)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(field, "not base64") from exc
    if not raw.startswith(b"%PDF-") and not ofd.is_ofd(raw):
        raise invalid(field, "neither a PDF nor an OFD")
    if len(raw) > MAX_PDF:
        raise invalid(field, "larger than 30 MB")
    return raw


decode_pdf = decode_document


async def sign_ofd(
    res: Resources,
    data: bytes,
    positions: list[SignPosition],
    *,
    app_code: str,
    user_id: str | None = None,
    password: str | None = None,
    doc_name: str = "document.ofd",
    ip: str = "",
) -> bytes:
    """Seal (or sign) an OFD: one GB/T 33190 §18 signature per position, in order, each protecting the ones before.
    SM2/SM3 always; the seal's SM2 certificate signs; an RFC 3161 timestamp from the TSA in each signed value."""
    try:
        pkg = ofd.Package.load(data)
    except ofd.OFDError as exc:
        raise invalid("document", f"not a readable OFD: {exc}") from exc
    client = keys.signer(res)
    stamper = await timestamps.timestamper(res)
    token = timestamps.ses_token(stamper) if stamper is not None else None
    done: list[tuple[SignPosition, Any, list[ofdsign.Annot]]] = []
    try:
        for pos in positions:
            seal_row = await seals.usable(res, pos.seal_code, app_code=app_code, user_id=user_id, password=password)
            cert = await _cert_for(res, seal_row, "sm2")
            seal_der = await seals.standard_seal(res, seal_row)
            annots: list[ofdsign.Annot] = []
            if pos.ofd_type == "Seal":
                width, height = ofdsign.seal_size_mm(seal_der, pos.size)
                annots = ofdsign.placement(pkg, pos, width, height)

            async def sign_sm2(tbs: bytes, key_index: int = cert["key_index"]) -> bytes:
                return await client.sign(key_index, tbs)

            await ofdsign.sign(
                pkg,
                sig_type=pos.ofd_type,
                annots=annots,
                seal_der=seal_der,
                cert=bytes(cert["cert_der"]),
                sign_sm2=sign_sm2,
                timestamp=token,
            )
            done.append((pos, cert, annots))
    except ofd.OFDError as exc:
        raise invalid("document", f"not a usable OFD: {exc}") from exc
    out = pkg.dump()
    digest = hashlib.sha256(out).hexdigest()
    for pos, cert, annots in done:
        detail: dict[str, Any] = {"user": user_id or "", "algorithm": "sm2", "format": "ofd", "type": pos.ofd_type}
        detail["page"] = annots[0].page if annots else None
        await _log_seal(res, app_code, pos, cert, doc_name, digest, ip, detail, timestamped=stamper is not None)
    return out


async def sign_request(res: Resources, req: SignRequest, app_code: str, ip: str) -> SignResult:
    """What `POST /eseal/v1/documents:sign` does once the app is authenticated: base64 PDF or OFD in, the same
    format sealed out."""
    raw = decode_document(req.document)
    if ofd.is_ofd(raw):
        signed = await sign_ofd(
            res,
            raw,
            req.seals,
            app_code=app_code,
            user_id=req.user_id,
            password=req.seal_password,
            doc_name=req.name,
            ip=ip,
        )
        return SignResult(
            document=base64.b64encode(signed).decode(), sha256=sha256_hex(signed), signatures=len(req.seals)
        )
    with tempfile.TemporaryDirectory(dir=work_dir(res)) as tmp:
        src, out = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
        src.write_bytes(raw)
        count = await sign_file(
            res,
            src,
            out,
            req.seals,
            app_code=app_code,
            algorithm=req.algorithm,
            user_id=req.user_id,
            password=req.seal_password,
            doc_name=req.name,
            ip=ip,
        )
        signed = out.read_bytes()
    return SignResult(document=base64.b64encode(signed).decode(), sha256=sha256_hex(signed), signatures=count)


_inflight: dict[tuple[int, int, str], asyncio.Future[Any]] = {}


async def _shared(res: Resources, what: str, load: Callable[[], Awaitable[T]]) -> T:
    """One load for all callers that ask while it runs (a burst of verifications reads the trust material and a
    seal's state once, not once each); nothing is kept after it finishes, so no answer is staler than the burst."""
    key = (id(res), id(asyncio.get_running_loop()), what)
    pending = _inflight.get(key)
    if pending is not None:
        value: T = await asyncio.shield(pending)
        return value
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    _inflight[key] = future
    try:
        result = await load()
        future.set_result(result)
        return result
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: the callers that share it raise it themselves
        raise
    finally:
        _inflight.pop(key, None)


async def _load_trust(res: Resources) -> pdfverify.Trust:
    await ca.ensure_cas(res)
    rows = await repo.cas(res.db)
    roots = [bytes(r["cert_der"]) for r in rows if r["parent_id"] is None and r["trusted"]]
    intermediates = [bytes(r["cert_der"]) for r in rows if r["parent_id"] is not None]
    crls = [await ca.crl(res, r["id"]) for r in rows if r["parent_id"] is not None and r["key_index"] is not None]
    return pdfverify.Trust(roots=roots, intermediates=intermediates, crls=crls)


TRUST_TTL = 60.0  # besides the generation: a CRL's time-driven re-issue is picked up within a minute


@dataclass
class _Known:
    """What this process read of one generation of the trust material (eseal.trust_generation)."""

    generation: int
    expires: float
    trust: pdfverify.Trust | None = None
    seals: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # seal code -> state (None: unknown)
    serial_codes: dict[int, set[str]] = field(default_factory=dict)  # certificate serial -> seal codes


_known: dict[str, _Known] = {}  # database URL -> the generation last read


async def _generation(res: Resources) -> _Known:
    """The trust material's current generation, read from PostgreSQL on every call (never shared between
    callers: a verification that starts after a revocation has committed must see its generation)."""
    generation = await repo.trust_generation(res.db)
    known = _known.get(res.settings.database_url)
    if known is None or known.generation != generation or known.expires < time.monotonic():
        known = _Known(generation, time.monotonic() + TRUST_TTL)
        _known[res.settings.database_url] = known
    return known


def clear_trust_cache() -> None:
    _known.clear()


async def trust(res: Resources) -> pdfverify.Trust:
    """Roots by priority, our issuing CAs, fresh CRLs; `seal_states` then adds the seals the document names.
    Loaded once per generation of the trust material (and at most a minute), not per verification."""
    known = await _generation(res)
    if known.trust is None:
        loaded = await _shared(res, f"trust:{known.generation}", lambda: _load_trust(res))
        loaded.anchors_key()
        known.trust = loaded
    base = known.trust
    return pdfverify.Trust(
        roots=base.roots,
        intermediates=base.intermediates,
        crls=base.crls,
        generation=known.generation,
        _anchors=base.anchors_key(),
    )


async def _seal_state(res: Resources, code: str) -> dict[str, Any] | None:
    row = await repo.seal_by_code(res.db, code)
    if row is None:
        return None
    certs = await repo.seal_cert_rows(res.db, row["id"])
    return {
        "status": row["status"],
        "valid_to": row["valid_to"],
        "name": row["name"],
        "cert_serials": {str(c["serial"]) for c in certs if c["serial"] is not None},
    }


def _known_for(res: Resources, trust_: pdfverify.Trust) -> _Known | None:
    known = _known.get(res.settings.database_url)
    return known if known is not None and known.generation == trust_.generation and trust_.generation else None


async def seal_states(res: Resources, trust_: pdfverify.Trust, codes: set[str]) -> dict[str, dict[str, Any]]:
    """Fill in the state of the seals a document's signatures name (ours read once per generation); a seal not ours
    is asked of the seal platform (mutual recognition), whose answer and recognised seal CAs are returned by code."""
    known = _known_for(res, trust_)
    foreign: dict[str, dict[str, Any]] = {}
    for code in codes:
        if known is not None and code in known.seals:
            state = known.seals[code]
        else:
            what = f"seal:{trust_.generation}:{code}"
            state = await _shared(res, what, lambda code=code: _seal_state(res, code))  # type: ignore[misc]
            if known is not None:
                known.seals[code] = state
        if state is None and sealplatform.is_code(code):
            state = foreign[code] = await _shared(
                res,
                f"foreign:{code}",
                lambda code=code: sealplatform.foreign_state(res, code),  # type: ignore[misc]
            )
        if state is not None:
            trust_.seals[code] = state
    added = [r for r in sealplatform.recognised_roots(foreign) if r not in trust_.roots]
    if added:
        # Other provinces' seal CAs for this document only: a new anchors key, so no cached validation context
        # built with them is ever used for a document of ours.
        trust_.roots = trust_.roots + added
        trust_._anchors = ""
    return foreign


async def _codes_for_serials_uncached(res: Resources, serial: int) -> set[str]:
    codes: set[str] = set()
    cert = await repo.certificate_by_serial(res.db, serial)
    if cert is None:
        return codes
    for seal_id in await repo.seal_ids_for_cert(res.db, cert["id"]):
        row = await repo.seal(res.db, seal_id)
        if row is not None and row["code"]:
            codes.add(row["code"])
    return codes


async def _codes_for_serials(res: Resources, serials: set[int], trust_: pdfverify.Trust) -> set[str]:
    known = _known_for(res, trust_)
    codes: set[str] = set()
    for serial in serials:
        if known is not None and serial in known.serial_codes:
            codes |= known.serial_codes[serial]
            continue
        found = await _codes_for_serials_uncached(res, serial)
        if known is not None:
            known.serial_codes[serial] = found
        codes |= found
    return codes


def is_ofd_file(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


async def _judged(res: Resources, path: Path, stack: contextlib.ExitStack) -> VerifyResult:
    """The verdict on a PDF or OFD: ours judged against our trust, other provinces' seals through the platform."""
    trust_ = await trust(res)
    base_roots = trust_.roots
    if is_ofd_file(path):
        data = await asyncio.to_thread(path.read_bytes)
        pkg = ofdverify.load(data)
        codes, serials = ofdverify.seal_codes(pkg) if pkg is not None else (set(), set())
        foreign = await seal_states(res, trust_, codes | await _codes_for_serials(res, serials, trust_))

        async def run(t: pdfverify.Trust) -> VerifyResult:
            return await ofdverify.verify_bytes(data, t, pkg)
    else:
        # The parsed PDF reads from its file: one handle for the seal codes and every verification run.
        f = stack.enter_context(path.open("rb"))
        parsed = pdfverify.parse(f)
        foreign = await seal_states(res, trust_, pdfverify.seal_codes(parsed))

        async def run(t: pdfverify.Trust) -> VerifyResult:
            return await pdfverify.verify_stream(f, t, parsed)

    result = await run(trust_)
    if trust_.roots != base_roots and len(trust_.seals) > len(foreign):
        # Seals of ours beside recognised ones: ours are judged without the other provinces' CAs.
        own = pdfverify.Trust(trust_.roots[: len(base_roots)], trust_.intermediates, trust_.crls, trust_.seals)
        ours = await run(own)
        mixed = [
            o if s.seal_code not in foreign else s for s, o in zip(result.signatures, ours.signatures, strict=True)
        ]
        result = msgspec.structs.replace(result, signatures=mixed)
    return sealplatform.judge(result, foreign)


async def verify_file(
    res: Resources, path: Path, *, actor: str = "public", ip: str = "", doc_name: str = ""
) -> VerifyResult:
    """Verify a sealed PDF or OFD (told apart by content)."""
    with contextlib.ExitStack() as stack:
        result = await _judged(res, path, stack)
    for sig in result.signatures:
        await logs.append(
            res.db,
            "verify",
            "verify",
            actor=actor,
            seal_code=sig.seal_code,
            doc_name=doc_name,
            doc_hash=result.document_sha256,
            result="valid" if sig.valid else "invalid" if sig.confirmed else "unconfirmed",
            ip=ip,
            detail={
                "failed": [c.name for c in sig.checks if c.verdict == "fail"],
                "kind": sig.kind,
                "format": result.format,
            },
        )
    return result


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
