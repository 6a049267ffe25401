"""Registration of organisations: an application with uploaded credentials under an existing organisation,
reviewed by an administrator whose scope covers the parent (the level above); documents downloadable by them."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from core import audit
from core.pagination import decode_cursor, next_cursor
from core.problems import invalid, not_found
from core.resources import Resources
from orgs import masks, repo, tree, uploads
from orgs.masks import Masker
from orgs.models import AdminPrincipal, Document, NewOrgApplication, OrgApplication, OrgApplicationPage, Review
from orgs.scope import can_see, four_eyes, sql_scope
from orgs.service import conflict

CTX_CONTACT_NAME = "orgs.contact_name"
CTX_CONTACT_PHONE = "orgs.contact_phone"
_CHILD_LEVEL = {"province": "city", "city": "county", "county": "station"}


def _placement(parent: asyncpg.Record, data: NewOrgApplication) -> tuple[str, str]:
    """(level, region code) of the new organisation under `parent`, or a 400 naming the field."""
    if data.kind == "police_type":
        if parent["kind"] != "bureau" or parent["level"] not in ("province", "city"):
            raise invalid("kind", "police types sit under the province or a city bureau")
        if data.police_type not in tree.POLICE_TYPES:
            raise invalid("police_type", f"one of {', '.join(tree.POLICE_TYPES)}")
        return parent["level"], parent["region_code"]
    level = _CHILD_LEVEL.get(parent["level"]) if parent["kind"] == "bureau" else None
    if level is None:
        raise invalid("parent_code", "no organisation of this kind can sit under that parent")
    if data.kind == "station":
        if level != "station":
            raise invalid("kind", "stations sit under a county bureau")
        return level, parent["region_code"]
    if level == "station":
        raise invalid("kind", "under a county bureau only stations")
    prefix = parent["region_code"][: 2 if level == "city" else 4]
    if not (
        len(data.code) == 6 and data.code.isdigit() and data.code.startswith(prefix) and data.code != parent["code"]
    ):
        raise invalid("code", f"a GB/T 2260 code under {parent['region_code']}")
    return level, data.code


async def apply(
    res: Resources,
    data: NewOrgApplication,
    files: list[tuple[str, bytes]],
    actor: str,
    by: AdminPrincipal | None = None,
) -> OrgApplication:
    """A new application; `by` is the administrator signed in when applying (none for a public applicant), who,
    like their organisation, never reviews it (four-eyes)."""
    if not files:
        raise invalid("documents", "at least one credential document")
    if len(files) > uploads.MAX_FILES:
        raise invalid("documents", f"at most {uploads.MAX_FILES} files")
    checked = [uploads.check(name, content, i) for i, (name, content) in enumerate(files)]
    parent = await repo.org_by_code(res.db, data.parent_code)
    if parent is None:
        raise invalid("parent_code", "no such organisation")
    if await repo.org_by_code(res.db, data.code) is not None:
        raise conflict("an organisation with this code exists")
    level, region = _placement(parent, data)
    async with res.db.acquire() as conn, conn.transaction():
        app_id = await repo.insert_application(
            conn,
            code=data.code,
            name=data.name,
            parent_id=parent["id"],
            parent_path=parent["path"],
            level=level,
            kind=data.kind,
            police_type=data.police_type if data.kind == "police_type" else None,
            region_code=region,
            contact_name_enc=res.fields.encrypt(data.contact_name, context=CTX_CONTACT_NAME),
            contact_phone_enc=res.fields.encrypt(data.contact_phone, context=CTX_CONTACT_PHONE),
            submitted_by=by.id if by else None,
            submitter_org_path=by.org_path if by else "",
        )
        if app_id is None:
            raise conflict("an application for this code is pending")
        for doc in checked:
            doc_id = uuid.uuid4()
            stored = uploads.store(res.settings.var_path, app_id, doc_id, doc)
            await repo.insert_document(
                conn,
                doc_id=doc_id,
                application_id=app_id,
                filename=doc.filename,
                content_type=doc.content_type,
                size=len(doc.content),
                sm3=doc.digest,
                stored_name=stored,
            )
        await audit.record(conn, actor=actor, action="orgs.org.apply", target=data.code)
    return await _view(res, app_id, by)


async def _views(res: Resources, rows: list[asyncpg.Record], m: Masker) -> list[OrgApplication]:
    """The applications as `m`'s administrator sees them: the contacts follow the masking catalogue
    (`contact_name`, `contact_phone`) and the viewer's unmask level like every other sensitive field."""
    docs: dict[uuid.UUID, list[Document]] = {}
    for d in await repo.documents(res.db, [r["id"] for r in rows]):
        docs.setdefault(d["application_id"], []).append(Document(**{k: d[k] for k in Document.__struct_fields__}))
    return [
        OrgApplication(
            id=r["id"],
            code=r["code"],
            name=r["name"],
            parent_code=r["parent_code"],
            parent_path=r["parent_path"],
            level=r["level"],
            kind=r["kind"],
            police_type=r["police_type"],
            region_code=r["region_code"],
            contact_name=m("contact_name", res.fields.decrypt(r["contact_name_enc"], context=CTX_CONTACT_NAME)),
            contact_phone=m("contact_phone", res.fields.decrypt(r["contact_phone_enc"], context=CTX_CONTACT_PHONE)),
            status=r["status"],
            reason=r["reason"],
            version=r["version"],
            documents=docs.get(r["id"], []),
            created_at=r["created_at"],
        )
        for r in rows
    ]


_NOBODY = AdminPrincipal(
    id=uuid.UUID(int=0),
    username="",
    org_id=uuid.UUID(int=0),
    org_path="",
    org_level="",
    region_code="",
    data_scope="own",
    permissions=frozenset(),
    roles=(),
)  # a public applicant's view: every catalogued field masked


async def _view(res: Resources, app_id: uuid.UUID, p: AdminPrincipal | None) -> OrgApplication:
    row = await repo.application(res.db, app_id)
    if row is None:
        raise not_found("application")
    return await _shown(res, p or _NOBODY, [row], str(app_id))


async def _shown(res: Resources, p: AdminPrincipal, rows: list[asyncpg.Record], what: str) -> OrgApplication:
    return (await _shown_all(res, p, rows, what))[0]


async def _shown_all(res: Resources, p: AdminPrincipal, rows: list[asyncpg.Record], what: str) -> list[OrgApplication]:
    m = await masks.masker(res, p)
    out = await _views(res, rows, m)
    await m.audit(res, what)  # an unmasked read of the contacts is audited
    return out


async def _visible(res: Resources, p: AdminPrincipal, app_id: uuid.UUID) -> asyncpg.Record:
    row = await repo.application(res.db, app_id)
    if row is None or not can_see(p, row["parent_path"]):
        raise not_found("application")
    return row


async def get(res: Resources, p: AdminPrincipal, app_id: uuid.UUID) -> OrgApplication:
    return await _shown(res, p, [await _visible(res, p, app_id)], f"org_application:{app_id}")


async def list_applications(
    res: Resources, p: AdminPrincipal, status: str | None, cursor: str | None, limit: int
) -> OrgApplicationPage:
    at, rid = decode_cursor(cursor)
    rows = await repo.list_applications(
        res.db, sql_scope(p, "a.parent_path", 1), status=status, after=(at, rid) if at and rid else None, limit=limit
    )
    items = await _shown_all(res, p, rows, "org_applications") if rows else []
    return OrgApplicationPage(items=items, next_cursor=next_cursor(rows, limit))


async def review(res: Resources, p: AdminPrincipal, app_id: uuid.UUID, data: Review) -> OrgApplication:
    row = await _visible(res, p, app_id)
    four_eyes(p, submitted_by=row["submitted_by"], submitter_org=row["submitter_org_path"])
    if data.decision == "reject" and not data.reason.strip():
        raise invalid("reason", "a rejection names its reason")
    if row["status"] != "pending":
        raise conflict(f"the application was already decided ({row['status']})")
    async with res.db.acquire() as conn, conn.transaction():
        won = await repo.decide_application(
            conn,
            app_id,
            status="approved" if data.decision == "approve" else "rejected",
            reviewer=p.id,
            reason=data.reason,
            version=data.version or row["version"],
        )
        if won is None:
            raise conflict("the application was decided or changed meanwhile")
        if data.decision == "approve":
            org_id = await repo.insert_org(
                conn,
                code=row["code"],
                name=row["name"],
                level=row["level"],
                kind=row["kind"],
                police_type=row["police_type"],
                region_code=row["region_code"],
                parent_id=row["parent_id"],
                path=f"{row['parent_path']}.{row['code']}",
                if_taken="skip",
            )
            if org_id is None:
                raise conflict("an organisation with this code exists")
            await repo.link_application_org(conn, app_id, org_id)
        await audit.record(conn, actor=f"admin:{p.username}", action=f"orgs.org.{data.decision}", target=row["code"])
    return await _view(res, app_id, p)


async def document(
    res: Resources, p: AdminPrincipal, app_id: uuid.UUID, doc_id: uuid.UUID
) -> tuple[Path, str, str, str]:
    """(file, media type, sanitised name, SM3) of a document the reviewer may read; the read is audited."""
    await _visible(res, p, app_id)
    for d in await repo.documents(res.db, [app_id]):
        if d["id"] == doc_id:
            await audit.record(res.db, actor=f"admin:{p.username}", action="orgs.doc.download", target=str(doc_id))
            path = uploads.path_of(res.settings.var_path, d["stored_name"])
            return path, d["content_type"], d["filename"], d["sm3"]
    raise not_found("document")
