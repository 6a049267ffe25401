"""苏证通 Electronic seals: `create_app` builds the Litestar app mounted at `/eseal`.

Business systems (APPCode + HMAC-SM3 signed requests, see eseal/appauth.py) seal PDFs and OFDs (told apart by
content; OFD per GB/T 33190 §18 and GB/T 38540, see docs/eseal-ofd.md); anyone verifies a sealed PDF or OFD
through the API or the public page `/eseal/verify`; CRLs and CA certificates are published. Sealing takes an
`Idempotency-Key` (eseal/idempotency.py, scoped by the app).
"""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import jinja2
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.openapi.spec import SecurityScheme
from litestar.params import Body, Parameter

from core.app import build_app
from core.problems import ProblemError, invalid
from core.ratelimit import rate_limit
from core.resources import Resources
from core.settings import Settings
from eseal import appauth, ca, idempotency, ofd, ofd_templates, ofdrender, pdf_templates, repo, signing
from eseal.models import BatchRequest, BatchResult, FillRequest, SignPosition, SignRequest, SignResult, VerifyResult

MOUNT = "eseal"
MAX_PDF = signing.MAX_PDF
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, enable_async=False
)
CHECK_NAMES = {
    "format": "格式 Format",
    "signature": "签名值 Signature value",
    "cert_seal_match": "证书与印章匹配 Cert–seal match",
    "seal_validity": "印章有效性 Seal validity",
    "certificate": "证书链/有效期/吊销 Certificate",
    "signing_time": "签章时间 Signing time",
    "integrity": "文档完整性 Integrity",
    "timestamp": "时间戳 Timestamp",
}
VERDICTS = {"pass": "通过 pass", "fail": "不通过 fail", "warn": "注意 warning", "absent": "无 none"}
KINDS = {
    "pades": "PAdES",
    "sm2-ses": "SM2 / GB/T 38540 电子签章",
    "sm2-sign": "SM2 / GB/T 35275 数字签名",
    "unknown": "未知",
}
FORMATS = {"pdf": "PDF", "ofd": "OFD (GB/T 33190)"}
SECURITY: list[dict[str, list[str]]] = [{"HMAC-SM3": []}]


async def _app_code(request: Request[Any, Any, Any], res: Resources) -> str:
    return await appauth.authenticate(request, res)


APP_AUTH: dict[str, Any] = {"dependencies": {"app_code": Provide(_app_code)}, "security": SECURITY}


@post(
    "/v1/documents:sign",
    summary="Seal a PDF or OFD: seals by coordinates or keyword, cross-page seal; PDF: PAdES or SM2, OFD: GB/T 38540 "
    "SES (Seal) or GB/T 35275 (Sign) (business apps)",
    tags=["signing"],
    status_code=200,
    request_max_body_size=45 * 1024 * 1024,
    **APP_AUTH,
)
async def sign_document(
    request: Request[Any, Any, Any], res: Resources, app_code: str, data: SignRequest
) -> SignResult:
    ip = request.client.host if request.client else ""
    # A replayed answer is a Response (Litestar sends it as it is); the schema stays SignResult.
    return cast(
        SignResult, await idempotency.run(request, res, app_code, lambda: signing.sign_request(res, data, app_code, ip))
    )


@post(
    "/v1/documents:batch-sign",
    summary="Seal up to 50 PDFs or OFDs in one call; each result or error in order",
    tags=["signing"],
    status_code=200,
    request_max_body_size=45 * 1024 * 1024,
    **APP_AUTH,
)
async def batch_sign(request: Request[Any, Any, Any], res: Resources, app_code: str, data: BatchRequest) -> BatchResult:
    ip = request.client.host if request.client else ""

    async def work() -> BatchResult:
        results: list[SignResult | None] = []
        errors: list[str | None] = []
        for item in data.items:
            try:
                results.append(await signing.sign_request(res, item, app_code, ip))
                errors.append(None)
            except ProblemError as exc:
                results.append(None)
                errors.append(f"{exc.status} {exc.slug}: {exc.detail or exc.title}")
        return BatchResult(results=results, errors=errors)

    return cast(BatchResult, await idempotency.run(request, res, app_code, work))


@post(
    "/v1/documents:fill-and-sign",
    summary="Fill a template (证明 certificate or 电子证照 licence) to PDF or OFD and seal it at （盖章）",
    tags=["signing"],
    status_code=200,
    **APP_AUTH,
)
async def fill_and_sign(
    request: Request[Any, Any, Any], res: Resources, app_code: str, data: FillRequest
) -> SignResult:
    drawn = (
        ofd_templates.render(data.template, data.fields)
        if data.format == "ofd"
        else pdf_templates.render(data.template, data.fields)
    )
    req = SignRequest(
        document=base64.b64encode(drawn).decode(),
        seals=[SignPosition(seal_code=data.seal_code, keyword=pdf_templates.SEAL_KEYWORD)],
        algorithm=data.algorithm,
        name=data.name,
    )
    return await signing.sign_request(res, req, app_code, request.client.host if request.client else "")


async def _verify_upload(res: Resources, raw: bytes, name: str, ip: str) -> VerifyResult:
    if len(raw) > MAX_PDF:
        raise invalid("file", "larger than 30 MB")
    if not raw:
        raise invalid("file", "empty upload")
    with tempfile.TemporaryDirectory(dir=signing.work_dir(res)) as tmp:
        path = Path(tmp) / ("upload.ofd" if raw.startswith(b"PK") else "upload.pdf")
        path.write_bytes(raw)
        return await signing.verify_file(res, path, ip=ip, doc_name=name[:200])


@post(
    "/v1/verifications",
    summary="Verify a sealed PDF or OFD (multipart field `file`): the eight checks per signature",
    tags=["verification"],
    status_code=200,
    request_max_body_size=MAX_PDF + 65536,
    guards=[rate_limit(lambda s: s.eseal_verify_rate_per_ip, 60, name="eseal-verify")],
)
async def verify_api(
    request: Request[Any, Any, Any],
    res: Resources,
    data: Annotated[PdfUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> VerifyResult:
    raw = await data.file.read()
    return await _verify_upload(res, raw, data.file.filename or "", request.client.host if request.client else "")


@dataclass
class PdfUpload:
    file: UploadFile


def _page(action: str, result: VerifyResult | None = None, filename: str = "", preview: str = "") -> Response[str]:
    html = _TEMPLATES.get_template("verify.html").render(
        action=action,
        result=result,
        filename=filename,
        names=CHECK_NAMES,
        verdicts=VERDICTS,
        kinds=KINDS,
        formats=FORMATS,
        preview=preview,
    )
    return Response(html, media_type=MediaType.HTML)


@get("/verify", summary="Public verification page", tags=["verification"], include_in_schema=False)
async def verify_page() -> Response[str]:
    return _page("/eseal/verify")


@post(
    "/verify",
    summary="Public verification page: upload and see the result",
    tags=["verification"],
    include_in_schema=False,
    status_code=200,
    request_max_body_size=MAX_PDF + 65536,
    guards=[rate_limit(60, 60, name="eseal-verify-page")],
)
async def verify_page_post(
    request: Request[Any, Any, Any],
    res: Resources,
    data: Annotated[PdfUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> Response[str]:
    raw = await data.file.read()
    name = data.file.filename or ""
    result = await _verify_upload(res, raw, name, request.client.host if request.client else "")
    return _page("/eseal/verify", result, name, _preview(raw) if result.format == "ofd" else "")


def _preview(raw: bytes) -> str:
    """The first page of an OFD with its seals, as a data: URI (empty when it cannot be drawn)."""
    try:
        png = ofdrender.render_page(ofd.Package.load(raw), 0, dpi=60)
    except (ofd.OFDError, ValueError, OSError):
        return ""
    return "data:image/png;base64," + base64.b64encode(png).decode()


@get(
    "/v1/crl/{name:str}",
    summary="The current CRL of one of our issuing CAs (DER)",
    tags=["pki"],
    media_type="application/pkix-crl",
)
async def crl(
    res: Resources, name: Annotated[str, Parameter(max_length=40, description="e.g. sm2-issuing.crl")]
) -> Response[bytes]:
    ca_id = name.removesuffix(".crl")
    if not name.endswith(".crl") or ca_id not in ca.ISSUING.values():
        raise ProblemError(404, "not-found", "Not found", "未找到", f"no CA {ca_id}")
    return Response(await ca.crl(res, ca_id), media_type="application/pkix-crl")


@get(
    "/v1/cas/{name:str}",
    summary="A CA certificate (DER), e.g. sm2-root.cer",
    tags=["pki"],
    media_type="application/pkix-cert",
)
async def ca_cert(res: Resources, name: Annotated[str, Parameter(max_length=40)]) -> Response[bytes]:
    row = await repo.ca(res.db, name.removesuffix(".cer")) if name.endswith(".cer") else None
    if row is None:
        raise ProblemError(404, "not-found", "Not found", "未找到", f"no CA {name}")
    return Response(bytes(row["cert_der"]), media_type="application/pkix-cert")


def create_app(settings: Settings, resources: Resources | None = None) -> Litestar:
    return build_app(
        MOUNT,
        settings=settings,
        title="苏证通 Electronic seals",
        description="Certificates, seals, PDF and OFD signing and verification for business systems.",
        route_handlers=[
            sign_document,
            batch_sign,
            fill_and_sign,
            verify_api,
            verify_page,
            verify_page_post,
            crl,
            ca_cert,
        ],
        externals={
            "signer": f"{settings.signing_server_url}/healthz",
            "sealplatform": f"{settings.seal_platform}/v1/health",
        },
        resources=resources,
        security_schemes={
            "HMAC-SM3": SecurityScheme(
                type="apiKey",
                name="Authorization",
                security_scheme_in="header",
                description="HMAC-SM3 <hex> over METHOD\\npath\\nX-Timestamp\\nX-Nonce\\nhex(SHA-256(body)), "
                "with X-App-Code, X-Timestamp and a one-time X-Nonce",
            )
        },
    )
