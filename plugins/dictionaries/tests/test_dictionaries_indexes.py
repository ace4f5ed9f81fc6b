"""Filtering and sorting by a field use the typed value tables' indexes (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from dictionaries_support import code
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql

from kabinet.host import Host
from kabinet_dictionaries import entries, kinds, models
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
        stmt, _ = await entries.statements(session, found, query, published_only=False)
        sql = str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        plan = "\n".join(r[0] for r in await session.execute(text(f"EXPLAIN {sql}")))
    assert "ix_dictionaries_value_text_field" in plan, plan
    assert "ix_dictionaries_value_number_field" in plan, plan
    # The sort field's value is looked up per candidate by (entry, field): the primary key,
    # or the covering index once the table is vacuumed.
    assert "Index Cond: ((entry_id = " in plan, plan
    assert "Seq Scan" not in plan, plan
    page = await svc.entries(name, query)
    weights = [Decimal(e.values["weight"]) for e in page.items]
    assert weights == sorted(weights)
    assert page.total == sum(
        1 for i in range(n) if i % 20 == 3 and 10000 <= 1000 + (i * 7919) % 90000 <= 20000
    )
