"""Pagination of the page kit: one :class:`Paging` for every list, one pager macro.

A list page declares its page as a typed query parameter (so the API's lists show it in
the OpenAPI document), asks the service for one page, and hands the counted paging to the
template::

    @get("/accounts", access=..., include_in_schema=False)
    async def accounts(request: Request, q: FromQuery[str] = "", page_no: PageNo = 1):
        paging = Paging.of(request, page_no, size=50)
        rows, total = await service(request).list_accounts(
            search=q, limit=paging.limit, offset=paging.offset
        )
        return await page(request, "identity/accounts.html", rows=rows,
                          paging=paging.counted(total))

and the template shows ``{{ pager(paging) }}`` (``{% from "shell/pager.html" import
pager with context %}``): previous and next links that keep the page's other query
parameters (its filters), and "2 / 7" between them.

Any page number works: below 1 is the first page; beyond the last shows an empty list
whose "previous" link leads to the last page. A number that is not a whole number is
refused with a 400 naming ``page`` (Litestar's check of the typed parameter), a number
beyond an ``integer`` by the host's input guard: never a 500.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from litestar.params import QueryParameter

if TYPE_CHECKING:
    from litestar import Request

PAGE = "page"
"""The query parameter of the page number (one list per page: a second pager names its own)."""
PER_PAGE = "per_page"
PER_PAGE_MAX = 200
"""The most rows one page shows, whatever ``per_page`` asks."""

PAGE_MAX = 2**31 - 1
"""The last page number asked for that is kept (an offset beyond it fits no column)."""

PageNo = Annotated[
    int,
    QueryParameter(
        name=PAGE,
        required=False,
        description="The page to show, from 1 (a number below 1 is the first page).",
    ),
]
"""``page_no: PageNo = 1``: the page number, read from ``?page=``."""

PerPage = Annotated[
    int | None,
    QueryParameter(
        name=PER_PAGE,
        required=False,
        description=f"Rows per page, 1 to {PER_PAGE_MAX}; empty: the list's own size.",
    ),
]
"""``per_page: PerPage = None``: rows per page, read from ``?per_page=``."""


@dataclasses.dataclass
class Paging:
    """One page of a list: which rows to read (:attr:`offset`, :attr:`limit`), and once
    :meth:`counted`, how many pages there are and the links to the others."""

    page: int = 1
    per_page: int = 50
    total: int = 0
    param: str = PAGE
    path: str = ""
    keep: tuple[tuple[str, str], ...] = ()
    """The request's other query parameters, kept in the links."""
    anchor: str = ""
    """The id the links lead to on the page (a list below others: its heading), or ""."""

    @classmethod
    def of(
        cls,
        request: Request[Any, Any, Any] | None,
        page: int | None = 1,
        per_page: int | None = None,
        *,
        size: int = 50,
        most: int = PER_PAGE_MAX,
        param: str = PAGE,
        anchor: str = "",
    ) -> Paging:
        """The page asked for, brought within bounds: ``page`` at least 1, ``per_page``
        (``size`` when not given) from 1 to ``most``. ``request`` gives the path and
        the other query parameters the links keep (``None``: links are bare ``?page=N``);
        ``anchor``, an element's id the links lead to (``#anchor``)."""
        number = min(max(1, page or 1), PAGE_MAX)
        rows = size if per_page is None else per_page
        rows = max(1, min(rows, most))
        keep: tuple[tuple[str, str], ...] = ()
        path = ""
        if request is not None:
            path = request.url.path
            keep = tuple((k, str(v)) for k, v in request.query_params.multi_items() if k != param)
        return cls(page=number, per_page=rows, param=param, path=path, keep=keep, anchor=anchor)

    def counted(self, total: int) -> Paging:
        """This paging with the list's ``total`` rows known (it gives :attr:`pages`)."""
        self.total = max(0, total)
        return self

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def limit(self) -> int:
        return self.per_page

    @property
    def pages(self) -> int:
        """How many pages (at least one, an empty list has one empty page)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def previous(self) -> int | None:
        """The page before (the last one, from beyond it), ``None`` on the first."""
        return min(self.page - 1, self.pages) if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None

    @property
    def first_row(self) -> int:
        """The number of this page's first row (1-based; 0 when the page is empty)."""
        return self.offset + 1 if self.offset < self.total else 0

    @property
    def last_row(self) -> int:
        return min(self.offset + self.per_page, self.total)

    def url(self, number: int) -> str:
        """The link to page ``number``, the other query parameters kept (page 1 left out)."""
        query = list(self.keep)
        if number > 1:
            query.append((self.param, str(number)))
        text = urlencode(query)
        found = f"{self.path}?{text}" if text else (self.path or "?")
        return f"{found}#{self.anchor}" if self.anchor else found


__all__ = ["PAGE", "PER_PAGE", "PER_PAGE_MAX", "PageNo", "Paging", "PerPage"]
