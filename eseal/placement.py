"""What a keyword position resolves to, for PDF and OFD alike: the hits on the requested page, or a 422 problem
(a missing keyword or a page that does not hold it is an error, never a silent move to another place)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from core.problems import ProblemError
from eseal.models import SignPosition


class Hit(Protocol):
    @property
    def page(self) -> int: ...


H = TypeVar("H", bound=Hit)


def keyword_hits(hits: Sequence[H], pos: SignPosition) -> list[H]:
    """`hits` of `pos.keyword` on `pos.page` (every page when none is given), in document order; never empty."""
    if not hits:
        raise ProblemError(
            422,
            "keyword-not-found",
            "Keyword not found",
            "未找到关键字",
            f"'{pos.keyword}' does not occur in the document",
            field="keyword",
        )
    on_page = [h for h in hits if pos.page is None or h.page == pos.page]
    if not on_page:
        found = sorted({h.page for h in hits})
        raise ProblemError(
            422,
            "keyword-not-on-page",
            "Keyword not on that page",
            "该页没有此关键字",
            f"'{pos.keyword}' is not on page {pos.page} (found on pages {found}, 0-based)",
            field="page",
        )
    return on_page
