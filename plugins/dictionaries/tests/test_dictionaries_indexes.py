"""Filtering and sorting by a field use the typed value tables' indexes (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from dictionaries_support import code
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.host import Host
from kabinet_dictionaries import kinds, models, queries
from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.services import Dictionaries, Filter, Query

pytestmark = pytest.mark.postgres


async def test_filter_by_two_fields_and_sort_by_a_third_use_the_value_indexes(
    host: Host, svc: Dictionaries
) -> None:
    name = code("idx")
    found = await svc.create_type(
        code=name,
        name_ru="Тарифы",
        name_en="Tariffs",
        fields=[
            FieldDef(
                code="vehicle",
                name_ru="ТС",
                name_en="Vehicle",
                kind="choice",
                choices=[Choice(code=f"v{i}", ru=f"v{i}") for i in range(20)],
            ),
            FieldDef(code="price", name_ru="Цена", name_en="Price", kind="money"),
            FieldDef(code="weight", name_ru="Вес", name_en="Weight", kind="number", precision=1),
        ],
    )
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    n = 6000
    async with host.db.session() as session:
        ids = list(
            await session.scalars(
                insert(models.entry).returning(models.entry.c.id),
                [
                    {
                        "type_id": found.id,
                        "published": True,
                        "version": 1,
                        "search": "",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for _ in range(n)
                ],
            )
        )
        by_code = {f.code: f for f in found.fields}
        for field, value in (
            ("vehicle", lambda i: f"v{i % 20}"),
            ("price", lambda i: Decimal(1000 + (i * 7919) % 90000)),
            ("weight", lambda i: Decimal(i % 250) / 10),
        ):
            f = by_code[field]
            await session.execute(
                insert(kinds.TABLES[f.kind]),
                [{"entry_id": e, "field_id": f.id, "value": value(i)} for i, e in enumerate(ids)],
            )
    async with host.db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE dictionaries_value_text, dictionaries_value_number"))
    query = Query(
        filters=[
            Filter(field="vehicle", value="v3"),
            Filter(field="price", op="ge", value="10000"),
            Filter(field="price", op="le", value="20000"),
        ],
        sort="weight",
    )
    async with host.db.session() as session:
        plan = await queries.plan(session, found, query, published_only=False)
        count = await explain(session, plan.count())
        walk = await explain(session, plan.walk(queries.walk_limit(plan, 100)))
        fallback = await explain(session, plan.sorted())
    # The count joins the two filters on their (field, value) indexes.
    assert "ix_dictionaries_value_text_field" in count, count
    assert "ix_dictionaries_value_number_field" in count, count
    # The page walks the sort field's (field, value) index in order, no sort step, and
    # checks each candidate by its (entry, field) key.
    assert "ix_dictionaries_value_number_field" in walk, walk
    assert "Index Cond: (field_id = " in walk, walk
    assert "Index Cond: ((entry_id = " in walk, walk
    assert "Sort" not in walk, walk
    # Sorting the matches instead looks each one's sort value up by (entry, field).
    assert "Index Cond: ((entry_id = " in fallback, fallback
    for plan_text in (count, walk, fallback):
        assert "Seq Scan" not in plan_text, plan_text

    def expected(i: int) -> bool:
        return i % 20 == 3 and 10000 <= 1000 + (i * 7919) % 90000 <= 20000

    matching = [i for i in range(n) if expected(i)]
    page = await svc.entries(name, query)
    weights = [Decimal(e.values["weight"]) for e in page.items]
    assert page.total == len(matching)
    assert weights == sorted(Decimal(i % 250) / 10 for i in matching)[:50]
    assert [e.id for e in page.items] == [
        ids[i] for i in sorted(matching, key=lambda i: (i % 250, ids[i]))[:50]
    ]
    # Descending, on the last page: the walk would be too long, the matches are sorted.
    last = (len(matching) - 1) // 20 + 1
    down = await svc.entries(
        name, Query(filters=query.filters, sort="-weight", page=last, per_page=20)
    )
    order = sorted(matching, key=lambda i: (i % 250, ids[i]), reverse=True)
    assert [e.id for e in down.items] == [ids[i] for i in order[(last - 1) * 20 :]]


async def explain(session: AsyncSession, stmt: Any) -> str:
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    return "\n".join(r[0] for r in await session.execute(text(f"EXPLAIN {sql}")))
