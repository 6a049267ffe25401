"""Data scope: which organisations' data an administrator may see or change (own, own subtree, all)."""

from __future__ import annotations

import uuid

from core.problems import ProblemError
from orgs.models import AdminPrincipal


def can_see(p: AdminPrincipal, org_path: str) -> bool:
    if p.data_scope == "all":
        return True
    if p.data_scope == "own":
        return org_path == p.org_path
    return org_path == p.org_path or org_path.startswith(p.org_path + ".")


def sql_scope(p: AdminPrincipal, column: str, arg_index: int) -> tuple[str, list[object]]:
    """An SQL condition on `column` (a text column holding an org path) and its arguments, numbered from
    `$arg_index`. Paths hold only [0-9a-z-] and dots, so LIKE needs no escaping."""
    if p.data_scope == "all":
        return "TRUE", []
    if p.data_scope == "own":
        return f"{column} = ${arg_index}", [p.org_path]
    return f"({column} = ${arg_index} OR {column} LIKE ${arg_index + 1})", [p.org_path, p.org_path + ".%"]


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
