"""Organisation registration: apply with credentials (multipart), list and review in scope, download documents."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody

from admin.auth import Guarded, needs
from admin.guards import admin_of, authenticate, token_of
from admin.org_routes import Cursor, Limit, Req
from core.problems import ProblemError, invalid
from core.ratelimit import rate_limit
from core.resources import Resources
from orgs import registration, uploads
from orgs.models import AdminPrincipal, NewOrgApplication, OrgApplication, OrgApplicationPage, Review


@dataclass
class OrgApplicationForm:
    code: str
    name: str
    parent_code: str
    kind: str
    contact_name: str
    contact_phone: str
    police_type: str | None = None
    documents: list[UploadFile] = field(default_factory=list)


async def _applicant_admin(request: Request[Any, Any, Any]) -> AdminPrincipal | None:
    """The administrator applying, when the request carries a live session (four-eyes); else a public applicant."""
    if not token_of(request):
        return None
    try:
        return await authenticate(request)
    except ProblemError:
        return None


@post(
    "/v1/org-applications",
    summary="Apply to register an organisation under an existing one, with credential documents (PDF/PNG/JPEG)",
    tags=["orgs"],
    status_code=201,
    # public registration, like a citizen's enrolment: the same per-IP hourly cap (SZT_ENROL_RATE_PER_IP)
    guards=[rate_limit(lambda s: s.enrol_rate_per_ip, 3600, name="org-apply")],
    request_max_body_size=uploads.MAX_FILES * uploads.MAX_BYTES + 64 * 1024,
    opt={"action": "orgs.org.apply"},
)
async def apply(
    request: Request[Any, Any, Any],
    res: Resources,
    data: Annotated[OrgApplicationForm, Body(media_type=RequestEncodingType.MULTI_PART)],
) -> OrgApplication:
    try:
        form = msgspec.convert(
            {k: getattr(data, k) for k in NewOrgApplication.__struct_fields__ if getattr(data, k) is not None},
            NewOrgApplication,
        )
    except msgspec.ValidationError as exc:
        raise invalid(str(exc).rsplit("at `$.", 1)[-1].rstrip("`") if "$." in str(exc) else "form", str(exc)) from exc
    files = data.documents if isinstance(data.documents, list) else [data.documents]
    contents = [(f.filename or "document", await f.read(uploads.MAX_BYTES + 1)) for f in files[: uploads.MAX_FILES + 1]]
    by = await _applicant_admin(request)
    actor = f"admin:{by.username}" if by else f"registrant:{form.contact_phone[-4:]}"
    return await registration.apply(res, form, contents, actor=actor, by=by)


class Applications(Guarded):
    """The review side: applications in the caller's scope, their documents, the decision."""

    path = "/v1/org-applications"
    tags = ("orgs",)

    @get(summary="Organisation applications under my scope", **needs("orgs.org.list"))
    async def list_applications(
        self,
        request: Req,
        res: Resources,
        status: Literal["pending", "approved", "rejected"] | None = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> OrgApplicationPage:
        return await registration.list_applications(res, admin_of(request), status, cursor, limit)

    @get("/{app_id:uuid}", summary="One organisation application", **needs("orgs.org.list"))
    async def get_application(self, request: Req, res: Resources, app_id: uuid.UUID) -> OrgApplication:
        return await registration.get(res, admin_of(request), app_id)

    @post(
        "/{app_id:uuid}/review",
        summary="Approve (creates the organisation) or reject with a reason; 409 when another reviewer was first",
        status_code=200,
        **needs("orgs.org.review", "orgs.org.review"),
    )
    async def review(self, request: Req, res: Resources, app_id: uuid.UUID, data: JSONBody[Review]) -> OrgApplication:
        return await registration.review(res, admin_of(request), app_id, data)

    @get(
        "/{app_id:uuid}/documents/{doc_id:uuid}",
        summary="Download a credential document (as an attachment, with its SM3 digest)",
        media_type="application/octet-stream",
        **needs("orgs.doc.download", "orgs.doc.download"),
    )
    async def download(self, request: Req, res: Resources, app_id: uuid.UUID, doc_id: uuid.UUID) -> Response[bytes]:
        path, media, name, digest = await registration.document(res, admin_of(request), app_id, doc_id)
        content = await asyncio.to_thread(path.read_bytes)
        return Response(
            content,
            media_type=media,
            headers={
                "Content-Disposition": f"attachment; filename=\"document\"; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
                "X-Content-SM3": digest,
            },
        )


ROUTES: list[Any] = [apply, Applications]
