"""``kabinet.lists``: the one search (``%``, ``_`` and ``\\`` taken literally, case
ignored the same on SQLite and PostgreSQL), the sort whitelist, the count and a page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from kabinet import lists
from kabinet.db import Database, parse_url

pytestmark = pytest.mark.smoke

meta = MetaData()
thing = Table(
    "t_lists",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(100)),
    Column("code", String(100)),
)
NAMES = {
    1: ("100% груз", "A_1"),
    2: ("1000 грузов", "AB1"),
    3: ("Путь C:\\temp", "a\\_1"),
    4: ("Путь C:temp", "x"),
    5: ("ООО «Ромашка»", "under_score"),
    6: ("ооо ромашка и партнёры", "underscore"),
    7: ("Ёлки-Палки", "ЁЛКИ"),
    8: ("LOGIstics", "Mixed"),
}


@pytest.fixture
async def db(empty_database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(parse_url(empty_database_url, tmp_path))
    async with database.session() as s:
        await s.run_sync(lambda sync: meta.create_all(sync.connection()))
        await s.execute(
            insert(thing), [{"id": i, "name": n, "code": c} for i, (n, c) in NAMES.items()]
        )
    yield database
    await database.dispose()


async def found(db: Database, term: str, *columns: object, fold_case: bool = True) -> set[int]:
    cols = columns or (thing.c.name,)
    async with db.reader() as s:
        query = select(thing.c.id).where(lists.search(term, *cols, fold_case=fold_case))
        return set((await s.scalars(query)).all())


async def test_percent_underscore_and_backslash_are_literal(db: Database) -> None:
    assert await found(db, "100%") == {1}  # not "1000 грузов"
    assert await found(db, "%") == {1}
    assert await found(db, "A_1", thing.c.code) == {1}  # not AB1
    assert await found(db, "_", thing.c.code) == {1, 3, 5}
    assert await found(db, "C:\\temp") == {3}  # not "C:temp"
    assert await found(db, "\\_", thing.c.code) == {3}
    assert await found(db, "\\") == {3}


async def test_case_is_ignored_alike_on_both_databases(db: Database) -> None:
    assert await found(db, "ооо ромашка") == {6}
    assert await found(db, "ООО") == {5, 6}  # Russian letters folded on SQLite too
    assert await found(db, "ёлки") == {7}
    assert await found(db, "ЁЛКИ", thing.c.name, thing.c.code) == {7}
    assert await found(db, "logistics") == {8}
    assert await found(db, "  партнёры ") == {6}  # the term is stripped


async def test_an_empty_term_is_no_condition_and_no_columns_no_row(db: Database) -> None:
    assert await found(db, "") == set(NAMES)
    assert await found(db, "   ") == set(NAMES)
    async with db.reader() as s:
        assert (await s.scalars(select(thing.c.id).where(lists.search("x")))).all() == []


async def test_an_unfolded_column_is_compared_as_it_is(db: Database) -> None:
    # a search column written in lower case already: the term is folded, the column not
    # (SQLite's LIKE would still match ASCII letters of another case: such a column has none)
    assert await found(db, "ООО", fold_case=False) == {6}
    assert await found(db, "UNDER", thing.c.code, fold_case=False) == {5, 6}


async def test_starts_with_takes_the_prefix_literally(db: Database) -> None:
    async with db.reader() as s:
        ids = await s.scalars(select(thing.c.id).where(lists.starts_with(thing.c.code, "a\\_")))
        assert set(ids) == {3}
        ids = await s.scalars(select(thing.c.id).where(lists.starts_with(thing.c.code, "A_")))
        assert set(ids) == {1}


SORTS = lists.Sorts(
    {"name": (thing.c.name, thing.c.id), "-id": (thing.c.id.desc(),)}, default="-id"
)


async def test_a_page_counts_every_row_and_reads_its_part_in_order(db: Database) -> None:
    async with db.reader() as s:
        rows, total = await lists.page(
            s, select(thing.c.id, thing.c.name), SORTS.order("-id"), limit=3, offset=3
        )
        assert total == 8
        assert [r.id for r in rows] == [5, 4, 3]
        ids, total = await lists.page_scalars(
            s,
            select(thing.c.id).where(lists.search("груз", thing.c.name)),
            SORTS.order(None),
            limit=10,
            offset=0,
        )
        assert (ids, total) == ([2, 1], 2)
        ids, total = await lists.page_scalars(s, select(thing.c.id), limit=None, offset=-5)
        assert sorted(ids) == sorted(NAMES)
        assert total == 8
        ids, total = await lists.page_scalars(
            s, select(thing.c.id), SORTS.order("-id"), limit=2, offset=0, cap=4
        )
        assert (ids, total) == ([8, 7], 5)  # "more than 4"


def test_an_unknown_sort_is_refused_naming_the_field_and_the_known_ones() -> None:
    with pytest.raises(lists.UnknownSort) as caught:
        SORTS.order("name; drop table t_lists")
    assert caught.value.field == "sort"
    assert caught.value.status == 400
    assert caught.value.text("en") == (
        "Unknown sort order name; drop table t_lists: choose one of name, -id."
    )
    assert "name, -id" in caught.value.text("ru")
    assert caught.value.text("ru") != caught.value.text("en")
    assert SORTS.order(None) == SORTS.order("-id")
    with pytest.raises(lists.UnknownSort):
        SORTS.order("")  # not a name (the OpenAPI document's enum has none such)
    with pytest.raises(ValueError, match="'size' is not one of"):
        lists.Sorts({"name": (thing.c.name,)}, default="size")
