"""What other packages (the admin console, the portal home) call: one place naming eseal's operations.

Certificates: `ca.apply / review / issue / renew / suspend / resume / revoke / crl / trusted_roots /
add_trusted_root / set_trust`. Seals: `seals.apply / review / make / register / publish / suspend / resume /
revoke / destroy / change_impression / bind_certificate / grant / ungrant / set_password`. Apps:
`appauth.create_app`. Documents: `signing.sign_file / verify_file`; `issue_certificate` (platform-sealed
documents such as 无犯罪记录证明, used by affairs) and `issued_path`. Logs and statistics below.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from core.pagination import MAX_PAGE, decode_cursor, encode_cursor
from core.resources import Resources
from eseal import appauth, ca, logs, repo, sealplatform, seals, signing
from eseal.issuing import issue_certificate, issued_path
from eseal.models import Certificate, LogPage, Seal, Stats

__all__ = [
    "appauth",
    "ca",
    "export_logs",
    "issue_certificate",
    "issued_path",
    "list_certificates",
    "sealplatform",
    "seals",
    "search_logs",
    "search_seals",
    "signing",
    "stats",
    "verify_logs",
]


async def stats(res: Resources, *, days: int = 30) -> Stats:
    """For the portal home: seals by type and state, certificates by form and state, signatures per day."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    raw = await repo.stats(res.db, since)

    def as_dict(key: str) -> dict[str, int]:
        return {str(r["k"]): int(r["n"]) for r in raw[key]}

    return Stats(
        seals_by_kind=as_dict("seals_by_kind"),
        seals_by_status=as_dict("seals_by_status"),
        certificates_by_form=as_dict("certs_by_form"),
        certificates_by_status=as_dict("certs_by_status"),
        signatures_by_day=as_dict("signs_by_day"),
        verifications=sum(as_dict("verifications").values()),
    )


async def search_logs(
    res: Resources, filters: dict[str, Any], *, limit: int = 50, cursor: str | None = None
) -> LogPage:
    """Signing / verification / certificate / seal logs by any field (see eseal.logs.search)."""
    return await logs.search(res.db, filters, limit=limit, cursor=cursor)


async def export_logs(res: Resources, filters: dict[str, Any]) -> str:
    return await logs.export_csv(res.db, filters)


async def verify_logs(res: Resources) -> list[int]:
    """Sequence numbers of log rows that break the hash chain (empty: intact)."""
    return await logs.verify_chain(res.db)


async def search_seals(
    res: Resources,
    *,
    kind: str | None = None,
    status: str | None = None,
    org_name: str | None = None,
    code: str | None = None,
    name: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Seal], str | None]:
    limit = max(1, min(limit, MAX_PAGE))
    at, last = decode_cursor(cursor)
    rows = await repo.search_seals(
        res.db,
        kind=kind,
        status=status,
        org_name=org_name,
        code=code,
        name=name,
        after=(at, last) if at and last else None,
        limit=limit,
    )
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return [await seals.to_model(res, r) for r in rows], nxt


async def list_certificates(
    res: Resources, *, status: str | None = None, form: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[list[Certificate], str | None]:
    limit = max(1, min(limit, MAX_PAGE))
    at, last = decode_cursor(cursor)
    rows = await repo.list_certificates(
        res.db, status=status, form=form, after=(at, last) if at and last else None, limit=limit
    )
    nxt = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if len(rows) == limit else None
    return [ca.to_model(r) for r in rows], nxt


async def seal_by_code(res: Resources, code: str) -> Seal | None:
    row = await repo.seal_by_code(res.db, code)
    return await seals.to_model(res, row) if row else None


async def certificate(res: Resources, cert_id: uuid.UUID) -> Certificate:
    return await ca.get(res, cert_id)
