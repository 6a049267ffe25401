"""Data scope: which organisations' data an administrator may see or change (own, own subtree, all)."""

from __future__ import annotations

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
