"""One place where affairs tells a person something: recorded here (what "my messages" of a case shows) and handed
to push. Until `push.service.notify` is on main (CONTRACTS.md) the record is all; after `git merge main` the same
call reaches the inbox and every channel of the person."""

from __future__ import annotations

import logging
import uuid

from affairs import repo
from core.resources import Resources

log = logging.getLogger("szt.affairs.notify")


async def notify(
    res: Resources, person_id: str, *, template: str, params: dict[str, str], source: str, idempotency_key: str
) -> None:
    inserted = await repo.insert_notification(
        res.db, uuid.UUID(person_id), template, params, source, idempotency_key[:200]
    )
    if not inserted:
        return  # told already
    from push import service as push_service

    entry = getattr(push_service, "notify", None)
    if entry is None:
        return
    try:
        await entry(res, person_id, template=template, params=params, source=source, idempotency_key=idempotency_key)
    except Exception:  # the case moved on regardless; the record above stays
        log.exception("push notify failed", extra={"template": template})
