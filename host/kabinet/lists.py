"""Lists of the page kit: search, a sort whitelist, the count and one page, in one place.

Every CRUD list of the portal (accounts, the security log, roles, organizations,
counterparties, contacts, link requests, dictionary types and documents, deliveries,
integration runs and quarantine) is built the same way::

    from kabinet import lists

    SORTS = lists.Sorts(
        {"name": (t.c.name, t.c.id), "-created": (t.c.created.desc(), t.c.id.desc())},
        default="name",
    )

    query = select(t).where(lists.search(q, t.c.name, t.c.email))
    rows, total = await lists.page(session, query, SORTS.order(sort), limit=paging.limit,
                                   offset=paging.offset)

- :func:`search` finds ``term`` as a literal part of any of the columns, ignoring case the
  same way on SQLite and PostgreSQL: ``%``, ``_`` and ``\\`` in what a person types are
  those characters, never wildcards (the one ``LIKE`` escaping of the portal).
- :class:`Sorts` maps the names ``?sort=`` may take to the columns they order by (the
  page's and the API's one whitelist); an unknown name is refused with a 400 naming
  ``sort`` (:class:`UnknownSort`), never passed to SQL and never silently replaced.
- :func:`page` (and :func:`page_scalars`) read the total and one page of rows; the page
  numbers, links and bounds are :class:`kabinet.paging.Paging`'s.

Hand-written SQL stays where a benchmark asked for it (the shipments registry, the entity
sinks, the dictionaries' entries): each says so where it stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, String, event, false, func, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kabinet.forms import FieldError

LIKE_ESCAPE = "\\"
"""The escape character of every ``LIKE`` pattern :func:`like_escape` makes."""

SORT = "sort"
"""The query parameter naming the order of a list."""


def like_escape(text: str) -> str:
    """``text`` for a ``LIKE`` pattern with ``escape=LIKE_ESCAPE``: ``%`` and ``_`` (and
    the escape character itself) stand for themselves, not for any characters."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


class _Fold(FunctionElement[str]):
    """``lower(column)``, every letter folded on SQLite too (see :func:`fold`)."""

    type = String()
    name = "kabinet_fold"
    inherit_cache = True


@compiles(_Fold)
def _fold_default(element: _Fold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(_Fold, "sqlite")
def _fold_sqlite(element: _Fold, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's lower() and LIKE fold ASCII letters only: a Russian name would be found
    # only as typed. The function below (Python's str.lower) folds every letter, as
    # PostgreSQL's lower() does.
    return f"{_FOLD}({compiler.process(element.clauses, **kw)})"


_FOLD = "kabinet_fold"


def _fold_text(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


@event.listens_for(Engine, "before_cursor_execute")
def _fold_on_sqlite(
    conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kw: Any
) -> None:
    """Gives a SQLite connection :data:`_FOLD` before the first statement that uses it
    (on every engine, once a connection: new connections and those pooled before this
    module was imported alike)."""
    if _FOLD not in statement or conn.dialect.name != "sqlite":
        return
    fairy = conn.connection
    if not fairy.info.get(_FOLD):
        fairy.dbapi_connection.create_function(_FOLD, 1, _fold_text, deterministic=True)  # type: ignore[union-attr]
        fairy.info[_FOLD] = True


def fold(column: Any) -> ColumnElement[str]:
    """``column`` in lower case, the same on SQLite and PostgreSQL, to compare with a
    term folded by ``str.lower()``."""
    return _Fold(column)


def contains(column: Any, text: str, *, folded: bool = False) -> ColumnElement[bool]:
    """``column`` contains ``text`` literally. ``folded``: ``column`` is compared in lower
    case (:func:`fold`) and ``text`` should be lower case already."""
    target = fold(column) if folded else column
    return target.like(f"%{like_escape(text)}%", escape=LIKE_ESCAPE)


def starts_with(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` starts with ``text`` literally (a prefix: an ИНН, an action's name)."""
    return column.like(f"{like_escape(text)}%", escape=LIKE_ESCAPE)  # type: ignore[no-any-return]


def search(term: str | None, *columns: Any, fold_case: bool = True) -> ColumnElement[bool]:
    """Rows where any of ``columns`` contains ``term`` (stripped) as a literal part, case
    ignored (``fold_case=False``: the columns hold folded text already, such as a search
    column written in lower case, and are compared as they are). An empty term is no
    condition (``true()``); no columns, no row."""
    text = (term or "").strip()
    if not text:
        return true()
    if not columns:
        return false()
    text = text.lower()
    return or_(*(contains(c, text, folded=fold_case) for c in columns))


class UnknownSort(FieldError):
    """``?sort=`` names no order the list knows: a 400 naming ``sort``, the known ones
    in the message."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(
            "Unknown sort order {name}: choose one of {known}.",
            SORT,
            params={"name": name, "known": ", ".join(known)},
        )


class Sorts:
    """The orders a list may be shown in: ``?sort=`` names -> the columns (and
    directions) they order by, and the default when there is no ``?sort=``. Add the key's
    column last (``t.c.id``) so that a page is stable."""

    def __init__(self, orders: Mapping[str, Sequence[Any]], *, default: str) -> None:
        if default not in orders:
            raise ValueError(f"the default sort {default!r} is not one of {list(orders)}")
        self.orders = {name: tuple(columns) for name, columns in orders.items()}
        self.default = default

    @property
    def names(self) -> list[str]:
        return list(self.orders)

    def parameter(self, name: str = SORT) -> Any:
        """The ``sort`` query parameter of a route, its names listed as an ``enum`` in the
        OpenAPI document (a client, schemathesis too, sees what is accepted)::

            OrganizationSort = Annotated[str, SORTS.parameter()]

            async def organizations(request, sort: OrganizationSort = "name") -> ...
        """
        from litestar.params import QueryParameter

        return QueryParameter(
            name=name,
            required=False,
            enum=tuple(self.names),
            description="The order of the list (another name is refused with a 400).",
        )

    def order(self, name: str | None) -> tuple[Any, ...]:
        """The columns ``name`` orders by (the default's for ``None``: no ``?sort=``); an
        unknown name, "" too, raises :class:`UnknownSort`."""
        if name is None:
            return self.orders[self.default]
        try:
            return self.orders[name]
        except KeyError:
            raise UnknownSort(name, self.names) from None


async def count(
    session: AsyncSession, query: Select[Any], *, cap: int | None = None, key: Any = None
) -> int:
    """How many rows ``query`` finds (at most ``cap + 1``: "more than ``cap``", for a
    list that stops counting). ``key``: the one column to read while counting (a unique
    one, such as the primary key) instead of the whole row."""
    inner = query.order_by(None)
    if key is not None:
        inner = inner.with_only_columns(key, maintain_column_froms=True)
    if cap is not None:
        inner = inner.limit(cap + 1)
    return int(await session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


def window(
    query: Select[Any], order: Sequence[Any] = (), *, limit: int | None, offset: int = 0
) -> Select[Any]:
    """``query`` in ``order``, ``limit`` rows (``None``: all) from ``offset`` (below 0:
    0): the page of :func:`page`, for a list whose count is read apart or not at all."""
    stmt = query.order_by(*order).offset(max(0, offset))
    return stmt if limit is None else stmt.limit(max(0, limit))


async def page(
    session: AsyncSession,
    query: Select[Any],
    order: Sequence[Any] = (),
    *,
    limit: int | None,
    offset: int = 0,
    cap: int | None = None,
    key: Any = None,
) -> tuple[list[Any], int]:
    """One page of ``query``'s rows in ``order`` (``limit`` rows from ``offset``;
    ``None``: all of them) and the total (see :func:`count` for ``cap`` and ``key``)."""
    total = await count(session, query, cap=cap, key=key)
    rows = (await session.execute(window(query, order, limit=limit, offset=offset))).all()
    return list(rows), total


async def page_scalars(
    session: AsyncSession,
    query: Select[Any],
    order: Sequence[Any] = (),
    *,
    limit: int | None,
    offset: int = 0,
    cap: int | None = None,
    key: Any = None,
) -> tuple[list[Any], int]:
    """:func:`page` of the first column (ORM objects for ``select(Model)``)."""
    total = await count(session, query, cap=cap, key=key)
    rows = (await session.scalars(window(query, order, limit=limit, offset=offset))).all()
    return list(rows), total


__all__ = [
    "LIKE_ESCAPE",
    "SORT",
    "Sorts",
    "UnknownSort",
    "contains",
    "count",
    "fold",
    "like_escape",
    "page",
    "page_scalars",
    "search",
    "starts_with",
    "window",
]
