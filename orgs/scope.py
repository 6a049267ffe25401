"""Data scope (the rule lives in core.datascope) and four-eyes on reviews."""

from __future__ import annotations

import uuid

from core.datascope import can_see, sql_scope
from core.problems import ProblemError
from orgs.models import AdminPrincipal

__all__ = ["can_see", "four_eyes", "sql_scope"]  # the data-scope rule re-exported for orgs' callers


def four_eyes(actor: AdminPrincipal, *, submitted_by: uuid.UUID | None, submitter_org: str) -> None:
    """Nobody reviews what they themselves submitted, nor what their own organisation submitted, the platform
    administrator included (403). At the root organisation, which has no level above, another administrator of it
    may review (still never the submitter)."""
    if submitted_by is not None and submitted_by == actor.id:
        raise ProblemError(
            403,
            "own-submission",
            "You cannot review what you submitted",
            "不能审核本人提交的申请",
            "four-eyes: the submitter never reviews their own submission; another reviewer decides",
        )
    if "." in submitter_org and submitter_org == actor.org_path:
        raise ProblemError(
            403,
            "own-organisation",
            "You cannot review what your own organisation submitted",
            "不能审核本机构提交的申请",
            "four-eyes: an application of your own organisation is reviewed by the level above",
        )
