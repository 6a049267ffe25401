"""Data scope: which organisations' data an administrator may see (own, own subtree, all), by organisation path.
One rule for every domain: orgs applies it to its principal, affairs to the actor the admin front door passes."""

from __future__ import annotations

from typing import Protocol


class Scoped(Protocol):
    @property
    def data_scope(self) -> str: ...

    @property
    def org_path(self) -> str: ...


def can_see(p: Scoped, org_path: str) -> bool:
    if p.data_scope == "all":
        return True
    if p.data_scope == "own":
        return org_path == p.org_path
    return org_path == p.org_path or org_path.startswith(p.org_path + ".")


def sql_scope(p: Scoped, column: str, arg_index: int) -> tuple[str, list[object]]:
    """An SQL condition on `column` (a text column holding an org path) and its arguments, numbered from
    `$arg_index`. Paths hold only [0-9a-z-] and dots, so LIKE needs no escaping."""
    if p.data_scope == "all":
        return "TRUE", []
    if p.data_scope == "own":
        return f"{column} = ${arg_index}", [p.org_path]
    return f"({column} = ${arg_index} OR {column} LIKE ${arg_index + 1})", [p.org_path, p.org_path + ".%"]
