"""RFC 3161 time-stamping authority simulator (mount `/tsa` on the simulators server).

`POST /tsa/v1/timestamp` takes a DER `TimeStampReq` (`application/timestamp-query`) and answers a DER
`TimeStampResp` (`application/timestamp-reply`): SHA-256/384/512 message imprints, the request's nonce echoed,
the signing certificate embedded with its chain, signed attributes with ESS signing-certificate. A request that
does not parse, or one for another hash, is answered with status `rejection` and the RFC 3161 failure bit
(badDataFormat, badAlg); before a certificate is installed every request gets `rejection` / systemFailure.

The TSA's own RSA-2048 key is generated on first start and kept in `<var>/tsa/key.der` (0600): a TSA holds its key
itself, as a real one does. Its certificate comes from our CA — eseal reads the public key
(`GET /tsa/_sim/public-key`), issues a certificate with the critical timeStamping EKU under `rsa-issuing` and
installs it with its chain (`PUT /tsa/_sim/certificate`); the chain is kept in `<var>/tsa/chain.der`. The token is
built by pyhanko's `DummyTimeStamper` (its own key, loaded once; real time; random serial).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
from asn1crypto import cms, core, keys, tsp, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from litestar import Litestar, Request, Response, get, post, put
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from msgspec import Meta
from pyhanko.sign import general
from pyhanko.sign.general import simple_cms_attribute
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from core.crypto import generate_rsa_key
from core.problems import ProblemError, invalid
from core.settings import Settings

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
HASHES = {"sha256", "sha384", "sha512"}
MAX_QUERY = 8192

B64 = Annotated[
    str,
    Meta(
        min_length=4,
        max_length=16384,
        pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
        description="DER, base64",
    ),
]


class PublicKey(msgspec.Struct):
    public_key: str  # SubjectPublicKeyInfo DER, base64


class InstallCertificate(msgspec.Struct):
    certificate: B64
    chain: Annotated[list[B64], Meta(max_length=4)] = []


class Installed(msgspec.Struct):
    certificate: str  # DER, base64
    subject: str
    serial: str
    not_after: str


class _Stamper(DummyTimeStamper):
    """pyhanko's DummyTimeStamper with the private key loaded once (it re-parsed the PKCS#8 key for every token:
    cryptography's RSA key check on load, ~40 ms, was nearly all of a timestamp's cost) and the ESS attribute
    built once."""

    def __init__(self, key: rsa.RSAPrivateKey, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key = key
        # The ESS signing-certificate attribute, built through asn1crypto once (it was two thirds of a token's CPU)
        # and re-read from its DER for each token.
        self._ess_der = bytes(general.as_signing_certificate(self.tsa_cert).dump())

    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, dt: datetime.datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        md = get_pyca_cryptography_hash(md_algorithm)
        digest = hashes.Hash(md)
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes(
            [
                simple_cms_attribute("content_type", "tst_info"),
                simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
                simple_cms_attribute("signing_certificate", tsp.SigningCertificate.load(self._ess_der)),
                simple_cms_attribute("message_digest", digest.finalize()),
            ]
        )
        signature = self._key.sign(signed_attrs.dump(), PKCS1v15(), get_pyca_cryptography_hash(md_algorithm.upper()))
        return signature, signed_attrs


def _write_private(path: Path, data: bytes) -> None:
    """Atomic 0600 write (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Authority:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        key_path = directory / "key.der"
        if not key_path.exists():
            fresh = generate_rsa_key(2048)
            der = fresh.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                _write_private(key_path.with_suffix(".new"), der)
                os.link(key_path.with_suffix(".new"), key_path)  # another process may have won: keep its key
            except FileExistsError:
                pass
            finally:
                key_path.with_suffix(".new").unlink(missing_ok=True)
        self.key_der = key_path.read_bytes()
        key = serialization.load_der_private_key(self.key_der, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key
        self.spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.stamper: _Stamper | None = None
        self.cert: x509.Certificate | None = None
        self._load_chain()

    def _load_chain(self) -> None:
        path = self.dir / "chain.der"
        if not path.exists():
            return
        raw = path.read_bytes()
        certs: list[x509.Certificate] = []
        while raw:  # concatenated DER certificates, the TSA's own first
            cert = x509.Certificate.load(raw)
            size = len(cert.dump())
            certs.append(x509.Certificate.load(raw[:size]))
            raw = raw[size:]
        self._use(certs)

    def _use(self, certs: list[x509.Certificate]) -> None:
        self.cert = certs[0]
        self.stamper = _Stamper(
            self.key,
            tsa_cert=certs[0],
            tsa_key=keys.PrivateKeyInfo.load(self.key_der),
            certs_to_embed=SimpleCertificateStore.from_certs(certs[1:]),
        )

    def install(self, cert_der: bytes, chain: list[bytes]) -> x509.Certificate:
        try:
            certs = [x509.Certificate.load(d, strict=True) for d in [cert_der, *chain]]
            spki = bytes(certs[0].public_key.dump())
            eku = certs[0].extended_key_usage_value
        except (ValueError, TypeError) as exc:
            raise invalid("certificate", "not a DER X.509 certificate") from exc
        if spki != self.spki:
            raise invalid("certificate", "its public key is not this TSA's key")
        if (
            eku is None
            or "time_stamping" not in eku.native
            or not certs[0].critical_extensions & {"extended_key_usage"}
        ):
            raise invalid("certificate", "needs the critical extended key usage timeStamping (RFC 3161 2.3)")
        _write_private(self.dir / "chain.der", b"".join(c.dump() for c in certs))
        self._use(certs)
        return certs[0]

    def respond(self, body: bytes) -> bytes:
        """The DER TimeStampResp for a request body."""
        try:
            req = tsp.TimeStampReq.load(body, strict=True)
            algorithm = req["message_imprint"]["hash_algorithm"]["algorithm"].native
            imprint = bytes(req["message_imprint"]["hashed_message"].native)
        except (ValueError, TypeError, KeyError):
            return _reject("bad_data_format", "not a DER TimeStampReq")
        if algorithm not in HASHES:
            return _reject("bad_alg", f"hash {algorithm} not accepted (SHA-256/384/512)")
        if len(imprint) != {"sha256": 32, "sha384": 48, "sha512": 64}[algorithm]:
            return _reject("bad_data_format", "message imprint length does not match its hash")
        if self.stamper is None:
            return _reject("system_failure", "no TSA certificate installed yet")
        return bytes(self.stamper.request_tsa_response(req).dump())


def _reject(failure: str, text: str) -> bytes:
    """TimeStampResp ::= SEQUENCE { status PKIStatusInfo } with no token (asn1crypto's TimeStampResp will not
    dump without one, though RFC 3161 makes it optional), so the SEQUENCE is written here."""
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": [text], "fail_info": {failure}}).dump()
    return b"\x30" + _der_length(len(status)) + status


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


@dataclass
class _TimestampOperation(Operation):
    """Documents the raw DER body, which the handler reads itself (a typed body would be parsed as JSON)."""

    def __post_init__(self) -> None:
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, max_length=MAX_QUERY)
        self.request_body = RequestBody(
            content={"application/octet-stream": OpenAPIMediaType(schema=binary)},
            description=f"DER TimeStampReq (RFC 3161; usually sent as {QUERY_TYPE})",
            required=False,
        )


def _handlers(settings: Settings) -> list[object]:
    authority: list[Authority] = []

    def tsa() -> Authority:
        if not authority:  # made at first use: the RSA key generation is not paid by every simulator start
            authority.append(Authority(Path(settings.var_path) / "tsa"))
        return authority[0]

    @post(
        "/v1/timestamp",
        status_code=200,
        summary="RFC 3161 time-stamp request (DER TimeStampReq in, DER TimeStampResp out)",
        tags=["tsa"],
        request_max_body_size=MAX_QUERY,
        media_type=REPLY_TYPE,
        operation_class=_TimestampOperation,
    )
    async def timestamp(request: Request[Any, Any, Any]) -> Response[bytes]:
        # The content type is not checked (RFC 3161 3.4 names application/timestamp-query; clients sending
        # octet-stream get answers too): whatever the body, the answer is a TimeStampResp, granted or rejected
        # with its failure bit (an empty or missing body: badDataFormat).
        return Response(tsa().respond(await request.body()), media_type=REPLY_TYPE)

    @get("/_sim/public-key", summary="Control: the TSA's public key, for our CA to certify", tags=["sim"])
    async def public_key() -> PublicKey:
        return PublicKey(base64.b64encode(tsa().spki).decode())

    @put("/_sim/certificate", status_code=200, summary="Control: install the TSA certificate and chain", tags=["sim"])
    async def install(data: InstallCertificate) -> Installed:
        try:
            cert_der = base64.b64decode(data.certificate, validate=True)
            chain = [base64.b64decode(c, validate=True) for c in data.chain]
        except (binascii.Error, ValueError) as exc:
            raise invalid("certificate", "not base64") from exc
        cert = tsa().install(cert_der, chain)
        return _installed(cert)

    @get("/_sim/certificate", summary="Control: the installed TSA certificate", tags=["sim"])
    async def installed() -> Installed:
        cert = tsa().cert
        if cert is None:
            raise ProblemError(404, "not-found", "Not found", "资源不存在", "no TSA certificate installed")
        return _installed(cert)

    return [timestamp, public_key, install, installed]


def _installed(cert: x509.Certificate) -> Installed:
    return Installed(
        certificate=base64.b64encode(cert.dump()).decode(),
        subject=cert.subject.human_friendly,
        serial=str(cert.serial_number),
        not_after=cert["tbs_certificate"]["validity"]["not_after"].native.isoformat(),
    )


def create_app(settings: Settings) -> Litestar:
    from simulators.app import simple_sim

    return simple_sim("tsa", "RFC 3161 time-stamping authority", settings, _handlers(settings))
