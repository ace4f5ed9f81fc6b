"""Entry queries: filters by fields, a sort field, search, pages, over the typed value tables.

There is no per-type table and no DDL at run time, so a question like "vehicle = tent and
price between 20,000 and 40,000, sorted by weight" is answered from the value tables'
indexes in two statements, the way a planner answers it for a plain table:

- the count: the filters joined on their ``(field, value)`` indexes, the most selective
  kind of filter first (equality before ranges before ``contains``);
- the page, when it sorts by a field: a walk along the sort field's ``(field, value,
  entry)`` index in order, each candidate checked by a primary-key probe per filter, that
  stops at the page's last entry. How far it may walk is bounded by the count (a walk that
  would cost more than sorting the matches is cut short), and when it is cut short, or
  the sort field has blanks, the matches are sorted instead (each match's sort value by
  its ``(entry, field)`` key, blanks last).

Without a sort field the page is the newest matches (one statement, with the total).

This query builder, not :mod:`kabinet.lists`' count-then-page, is kept on purpose: the
walk and the one-statement page were measured against hand-written SQL on a plain table
(``bench/dictionary.py``, docs/performance.md). Its text searches still escape through
``kabinet.lists`` (``contains``), the portal's one ``LIKE`` escaping.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from sqlalchemy import ColumnElement, Select, Table, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.paging import Paging
from kabinet_dictionaries import kinds, models
from kabinet_dictionaries.errors import Invalid, ValueRefused
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.structure import TypeInfo

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "contains", "empty", "filled"]
OPS: tuple[str, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "contains", "empty", "filled")
MAX_PER_PAGE = 500


class Filter(msgspec.Struct, kw_only=True, frozen=True):
    """``field`` ``op`` ``value`` (the value is read by the field's kind)."""

    field: str
    op: Op = "eq"
    value: Any = None


def filter_params(params: Iterable[tuple[str, str]]) -> Iterator[tuple[str, Filter | None]]:
    """The ``f.<field>[.<op>]`` query parameters (the API's and the entries page's), each
    with its name: its :class:`Filter`, or ``None`` when ``<op>`` is not one of
    :data:`OPS` (the API refuses it, the page leaves it out). Other parameters are skipped."""
    for key, value in params:
        if not key.startswith("f."):
            continue
        code, _, op = key[2:].partition(".")
        if op and op not in OPS:
            yield key, None
            continue
        yield key, Filter(field=code, op=op or "eq", value=value)  # type: ignore[arg-type]


class Query(msgspec.Struct, kw_only=True):
    filters: list[Filter] = msgspec.field(default_factory=list)
    sort: str | None = None
    """A field code, ``-code`` for descending; ``None``: newest first."""
    search: str = ""
    page: int = 1
    per_page: int = 50


_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "contains": lambda c, v: lists.contains(c, v, folded=True),  # v is lower case
}


async def resolve_reference(session: AsyncSession, field: FieldDef, value: Any) -> int:
    """The id of the entry a reference names: by id, or by its title (unique)."""
    t, e = models.dictionary_type, models.entry
    ref_type = select(t.c.id).where(t.c.code == (field.reference or "")).scalar_subquery()
    if isinstance(value, int):
        found = await session.scalar(select(e.c.id).where(e.c.id == value, e.c.type_id == ref_type))
    else:
        v, f = models.value_text, models.field
        first_text = (
            select(f.c.id)
            .where(f.c.type_id == ref_type, f.c.kind == "text")
            .order_by(f.c.position, f.c.id)
            .limit(1)
            .scalar_subquery()
        )
        ids = list(
            await session.scalars(
                select(v.c.entry_id).where(v.c.field_id == first_text, v.c.value == value).limit(2)
            )
        )
        found = ids[0] if len(ids) == 1 else None
    if found is None:
        raise ValueRefused("reference", type=field.reference or "")
    return int(found)


async def _filter_value(session: AsyncSession, field: FieldDef, flt: Filter) -> Any:
    if flt.op == "contains":
        return str(flt.value or "").strip().lower()
    value = kinds.parse(field, flt.value)
    if value is None:
        raise ValueRefused("required")
    if field.kind == "reference":
        value = await resolve_reference(session, field, value)
    return value


@functools.cache
def _alias(table: Table, n: int) -> Any:
    return table.alias(f"{table.name.removeprefix('dictionaries_')}_{n}")


@dataclass
class _FieldFilter:
    """The conditions on one field's value (several filters on a field share one lookup)."""

    field: FieldDef
    tests: list[tuple[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def table(self) -> Table:
        return kinds.TABLES[self.field.kind]

    def rank(self) -> int:
        """How selective this is likely to be (lower first): a unique value, an equality,
        a closed range, a one-sided comparison, then ``contains`` and ``ne``."""
        ops = {op for op, _ in self.tests}
        if "eq" in ops:
            return 0 if self.field.unique else 1
        if len(ops & {"lt", "le"}) and len(ops & {"gt", "ge"}):
            return 2
        if ops & {"lt", "le", "gt", "ge"}:
            return 3
        return 4 if "contains" in ops else 5

    def conditions(self, table: Any) -> list[ColumnElement[bool]]:
        return [table.c.field_id == self.field.id] + [
            _COMPARE[op](table.c.value, value) for op, value in self.tests
        ]


@dataclass
class Plan:
    """A query resolved against its type: what to look up, in which order."""

    type_id: int
    fields: list[_FieldFilter]
    presence: list[tuple[FieldDef, bool]]
    """(field, must have a value) for ``filled`` / ``empty``."""
    published_only: bool
    search: str
    sort: FieldDef | None
    descending: bool
    per_page: int
    offset: int
    _used: dict[str, int] = dataclasses.field(default_factory=lambda: defaultdict(int))

    def alias(self, table: Table) -> Any:
        """A name for one more use of ``table`` in this plan's statements; the aliases
        are made once per process (making one copies every column: costly per query)."""
        n = self._used[table.name]
        self._used[table.name] += 1
        return _alias(table, n)

    @property
    def probes(self) -> int:
        """Checks per candidate when walking the sort index."""
        entry = 1 if self.published_only or self.search else 0
        return len(self.fields) + len(self.presence) + entry

    def _entry_conditions(self) -> list[ColumnElement[bool]]:
        e = models.entry
        out: list[ColumnElement[bool]] = [e.c.type_id == self.type_id]
        if self.published_only:
            out.append(e.c.published.is_(True))
        if self.search:
            # the search column and the term are lower case already
            out.append(lists.contains(e.c.search, self.search))
        return out

    def _presence(self, id_col: Any) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        for f, present in self.presence:
            table = self.alias(kinds.TABLES[f.kind])
            probe = (
                select(literal(1))
                .where(table.c.entry_id == id_col, table.c.field_id == f.id)
                .scalar_subquery()
            )
            out.append(probe.is_not(None) if present else probe.is_(None))
        return out

    def matching(self) -> tuple[Select[Any], Any]:
        """Ids of the matching entries (the filters joined on their value indexes, the
        most selective first), and the id column."""
        e = models.entry
        need_entry = self.published_only or bool(self.search)
        if self.fields:
            first = self.fields[0]
            driver = self.alias(first.table)
            id_col = driver.c.entry_id
            stmt: Select[Any] = select(id_col).select_from(driver).where(*first.conditions(driver))
            for item in self.fields[1:]:
                alias = self.alias(item.table)
                stmt = stmt.join(alias, and_(alias.c.entry_id == id_col, *item.conditions(alias)))
            if need_entry:
                stmt = stmt.join(e, e.c.id == id_col).where(*self._entry_conditions())
        else:
            id_col = e.c.id
            stmt = select(id_col).where(*self._entry_conditions())
        return stmt.where(*self._presence(id_col)), id_col

    def count(self) -> Select[Any]:
        return select(func.count()).select_from(self.matching()[0].subquery())

    def newest(self) -> Select[Any]:
        """The page of newest matches with the total in a window (no sort field)."""
        stmt, id_col = self.matching()
        return (
            stmt.add_columns(func.count().over().label("total"))
            .order_by(id_col.desc())
            .limit(self.per_page)
            .offset(self.offset)
        )

    def walk(self, limit: Any) -> Select[Any]:
        """The page by walking the sort field's index in order (at most ``limit`` index
        entries), each candidate checked by key lookups, most selective check first;
        each row is the entry's id and its ``ENTRY_COLUMNS``."""
        assert self.sort is not None
        s = self.alias(kinds.TABLES[self.sort.kind])
        value, entry_id = (
            (s.c.value.desc(), s.c.entry_id.desc())
            if self.descending
            else (s.c.value.asc(), s.c.entry_id.asc())
        )
        walked = (
            select(s.c.entry_id, s.c.value)
            .where(s.c.field_id == self.sort.id)
            .order_by(value, entry_id)
            .limit(limit)
            .subquery("walk")
        )
        checks: list[ColumnElement[bool]] = []
        for item in self.fields:
            alias = self.alias(item.table)
            checks.append(
                select(literal(1))
                .where(alias.c.entry_id == walked.c.entry_id, *item.conditions(alias))
                .scalar_subquery()
                .is_not(None)
            )
        checks.extend(self._presence(walked.c.entry_id))
        e = models.entry
        if self.published_only or self.search:
            checks.extend(self._entry_conditions())  # on the entry row joined for its columns
        order = (
            (walked.c.value.desc(), walked.c.entry_id.desc())
            if self.descending
            else (walked.c.value.asc(), walked.c.entry_id.asc())
        )
        return (
            select(walked.c.entry_id, *entry_columns())
            .join(e, e.c.id == walked.c.entry_id)
            .where(*checks)
            .order_by(*order)
            .limit(self.per_page)
            .offset(self.offset)
        )

    def counted_walk(self, values: Sequence[FieldDef] = ()) -> Select[Any]:
        """:meth:`walk` with, in the same statement: the count (a ``total`` column), the
        walk bounded by :func:`walk_limit` computed from it in SQL; the type's current
        ``revision`` (whoever holds a cached definition learns here whether it is stale);
        and each of ``values``' value (a ``v<field id>`` column, a key lookup per row)."""
        total = select(func.count().label("n")).select_from(self.matching()[0].subquery())
        counted = total.cte("total")
        n = select(counted.c.n).scalar_subquery()
        if self.probes:
            limit: Any = select((counted.c.n * 2) // self.probes).scalar_subquery()
        else:
            limit = self.offset + self.per_page
        t = models.dictionary_type
        revision = select(t.c.revision).where(t.c.id == self.type_id).scalar_subquery()
        stmt = self.walk(limit).add_columns(n.label("total"), revision.label("revision"))
        walked = stmt.selected_columns[0]
        for f in values:
            table = self.alias(kinds.TABLES[f.kind])
            stmt = stmt.add_columns(
                select(table.c.value)
                .where(table.c.entry_id == walked, table.c.field_id == f.id)
                .scalar_subquery()
                .label(f"v{f.id}")
            )
        return stmt

    def sorted(self) -> Select[Any]:
        """The page by sorting all matches by their sort values (blanks last)."""
        assert self.sort is not None
        stmt, id_col = self.matching()
        s = self.alias(kinds.TABLES[self.sort.kind])
        stmt = stmt.outerjoin(s, and_(s.c.entry_id == id_col, s.c.field_id == self.sort.id))
        if self.descending:
            order = (s.c.value.desc().nulls_last(), id_col.desc())
        else:
            order = (s.c.value.asc().nulls_last(), id_col.asc())
        return stmt.order_by(*order).limit(self.per_page).offset(self.offset)


async def plan(
    session: AsyncSession, found: TypeInfo, query: Query, *, published_only: bool
) -> Plan:
    """Resolve ``query`` against the type; :class:`Invalid` names every filter at fault."""
    errors: dict[str, ValueRefused] = {}
    by_field: dict[str, _FieldFilter] = {}
    presence: list[tuple[FieldDef, bool]] = []
    order: dict[str, int] = defaultdict(int)
    for index, flt in enumerate(query.filters):
        f = found.field(flt.field)
        key = f"filters.{index}.{flt.field}"
        if f is None:
            errors[key] = ValueRefused("unknown_field", code=flt.field)
        elif flt.op in ("empty", "filled"):
            presence.append((f, flt.op == "filled"))
        else:
            try:
                value = await _filter_value(session, f, flt)
            except ValueRefused as exc:
                errors[key] = exc
                continue
            item = by_field.setdefault(f.code, _FieldFilter(f))
            order.setdefault(f.code, index)
            item.tests.append((flt.op, value))
    sort = None
    if query.sort:
        sort = found.field(query.sort.lstrip("-"))
        if sort is None:
            errors["sort"] = ValueRefused("unknown_field", code=query.sort.lstrip("-"))
    if errors:
        raise Invalid(errors)
    # The page within bounds whoever asks (the pages and the API read it through Paging
    # too; another app's Query may not): page at least 1, 1 to MAX_PER_PAGE rows.
    paging = Paging.of(None, query.page, query.per_page, most=MAX_PER_PAGE)
    return Plan(
        type_id=found.id,
        fields=sorted(by_field.values(), key=lambda i: (i.rank(), order[i.field.code])),
        presence=presence,
        published_only=published_only,
        search=query.search.strip().lower(),
        sort=sort,
        descending=bool(query.sort and query.sort.startswith("-")),
        per_page=paging.per_page,
        offset=paging.offset,
    )


def walk_limit(plan: Plan, total: int) -> int:
    """How far a walk along the sort index may go before sorting the matches is cheaper.

    Sorting costs about a lookup per match (after the join the count did); a walk costs
    ``probes`` lookups per index entry. Without checks every entry of the index matches.
    """
    wanted = plan.offset + plan.per_page
    if plan.probes == 0:
        return wanted
    return 2 * total // plan.probes


def entry_columns() -> list[Any]:
    """The entry's own columns a page shows (read with the ids when that is free)."""
    e = models.entry
    return [e.c.published, e.c.version, e.c.external_id, e.c.updated_at]


@dataclass
class PageRows:
    """A page of matching entries: their ids in order, how many match, and what the
    statement read with them (when the page came from the walk)."""

    ids: list[int]
    total: int
    rows: dict[int, Any] | None = None
    """Entry id -> row with ``ENTRY_COLUMNS`` and, if asked, ``v<field id>`` values."""
    revision: int | None = None
    """The type's revision as the statement saw it (``None``: not read)."""


async def select_page(
    session: AsyncSession,
    found: TypeInfo,
    query: Query,
    *,
    published_only: bool,
    with_values: bool = False,
) -> PageRows:
    """The page of entries matching ``query`` and how many match.

    Sorted by a field, one statement counts, walks the sort index and (``with_values``)
    reads the page's values; only a walk cut short (see :func:`walk_limit`) costs a
    second statement, sorting the matches.
    """
    p = await plan(session, found, query, published_only=published_only)
    if p.sort is None:
        rows = (await session.execute(p.newest())).all()
        if rows:
            return PageRows([int(r[0]) for r in rows], int(rows[0].total))
        return PageRows([], int(await session.scalar(p.count()) or 0))
    stmt = p.counted_walk(found.fields if with_values else ())
    rows = (await session.execute(stmt)).all()
    total = int(rows[0].total) if rows else int(await session.scalar(p.count()) or 0)
    wanted = min(p.per_page, total - p.offset)
    if wanted <= 0:
        return PageRows([], total)
    if len(rows) == wanted:
        return PageRows(
            [int(r[0]) for r in rows],
            total,
            {int(r[0]): r for r in rows},
            None if rows[0].revision is None else int(rows[0].revision),
        )
    return PageRows([int(i) for i in await session.scalars(p.sorted())], total)


async def select_ids(
    session: AsyncSession,
    found: TypeInfo,
    query: Query,
    *,
    published_only: bool,
) -> tuple[list[int], int]:
    """The page of entry ids matching ``query``, and how many match."""
    page = await select_page(session, found, query, published_only=published_only)
    return page.ids, page.total
