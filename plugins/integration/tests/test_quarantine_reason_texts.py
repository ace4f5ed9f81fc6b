"""Quarantine reasons in the reader's language: a sync sets records aside for reasons of
the decoding, the mapping and the owning apps' sinks; staff read each on the quarantine
page in Russian (no English word in it) or in English, with 1C's attribute names, while
the API keeps its English message and answers a stable code with its parameters. A record
set aside before reasons had codes shows its stored text; the revision that adds the code
keeps such records, on PostgreSQL and SQLite."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, inspect, text

from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.roles.services import ROLES
from kabinet.web import build_app
from kabinet_integration import models as m
from kabinet_integration import reasons
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer

pytestmark = pytest.mark.smoke

ORDERS = "Document_ЗаявкаНаПеревозку"
COUNTERPARTIES = "Catalog_Контрагенты"
AT = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC)
OLD_TEXT = "refused by the sink of an earlier version"
LATIN = re.compile(r"[A-Za-z]")


def _visible(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"(?s)<[^>]+>", " ", fragment)).split())


def reasons_on(page: str, label: str) -> dict[str, str]:
    """The reason cell of each row of the quarantine page, by the record's 1C id."""
    found = {}
    for row in re.findall(r"(?s)<tr>(.*?)</tr>", page):
        ref = re.search(r"<code>([^<]+)</code>", row)
        cell = re.search(rf'(?s)<td data-label="{label}">(.*?)</td>', row)
        if ref and cell:
            found[html.unescape(ref.group(1))] = _visible(cell.group(1))
    return found


async def staff(host: Host, web: httpx.AsyncClient, lang: str) -> None:
    """Sign a new admin in on ``web``, reading pages in ``lang``."""
    identity = host.services.of(IDENTITY)
    account = await identity.create_account(
        full_name="Инна Обменова", email=f"reasons-{uuid.uuid4().hex[:12]}@example.test"
    )
    await host.services.of(ROLES).grant(int(account.id), "admin", None)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=int(account.id), created_at=now, last_seen_at=now)
    )
    web.cookies.clear()
    web.cookies.set(identity.settings.cookie_name, token)
    web.cookies.set("kabinet_lang", lang)


def _without_values(said: str) -> str:
    """A Russian reason without what it quotes (1C's ids and values) and 1C's names."""
    return re.sub(r"«[^»]*»|`[^`]*`", "", said)


async def test_staff_read_each_reason_in_their_language(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    lost, headless, priced = generated.orders[:3]
    broken = dict(onec.data.get(ORDERS, lost) or {})
    broken["Статус"] = "Потеряна"  # the mapping: a value of no status
    onec.data.put(ORDERS, broken)
    no_client = dict(onec.data.get(ORDERS, headless) or {})
    del no_client["Контрагент_Key"]  # the decoding: a required field missing
    onec.data.put(ORDERS, no_client)
    bad_sum = dict(onec.data.get(ORDERS, priced) or {})
    bad_sum["Услуги"] = [dict(bad_sum["Услуги"][0], Сумма="много")]  # a line's wrong type
    onec.data.put(ORDERS, bad_sum)
    refused = generated.counterparties[1]
    cp = dict(onec.data.get(COUNTERPARTIES, refused) or {})
    cp["ИНН"] = "123"  # the companies sink refuses it, and what it owns follows
    onec.data.put(COUNTERPARTIES, cp)
    # Set aside before reasons had codes (of a source no longer configured: never retried).
    async with host.db.session() as s:
        await s.execute(
            insert(m.quarantine).values(
                source="before", entity="order", ref="old-1", payload={"Ref_Key": "old-1"},
                reason=OLD_TEXT, state="open", attempts=1, created_at=AT, updated_at=AT,
            )
        )  # fmt: skip
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=await build_app(host)),
        base_url="http://127.0.0.1:8000",
    ) as web:
        await staff(host, web, "ru")
        ru_page = await web.get("/integration/quarantine")
        assert ru_page.status_code == 200
        ru = reasons_on(ru_page.text, "Причина")
        await staff(host, web, "en")
        en = reasons_on((await web.get("/integration/quarantine")).text, "Reason")
        api = (await web.get("/api/integration/quarantine?limit=500")).json()["items"]

    assert ru[lost] == "`Статус`: неизвестное значение «Потеряна»"
    assert en[lost] == "`Статус` (status): unknown value 'Потеряна'"
    assert ru[headless] == "Не заполнен обязательный реквизит `Контрагент`"
    assert en[headless] == "missing required field `Контрагент` (counterparty)"
    assert ru[priced] == "`Услуги`, строка 1, `Сумма`: недопустимое значение"
    assert en[priced].startswith("`Услуги`, line 1, `Сумма` (services[0].amount): ")
    assert ru[refused] == "`ИНН`: ИНН — 10 цифр (организация) или 12 цифр (ИП, физлицо)"
    assert en[refused] == "`ИНН` (inn): ИНН is 10 digits (a company) or 12 digits (a person)"
    # The refused counterparty's contracts and orders, and the invoices of the lost orders.
    owned = {
        ref for ref, said in ru.items() if said.endswith(f"неизвестный контрагент «{refused}»")
    }
    assert owned
    assert all(en[ref].endswith(f"unknown counterparty '{refused}'") for ref in owned)
    waiting = {ref for ref, said in ru.items() if "ещё не получена" in said}
    assert waiting
    assert all("(not received yet)" in en[ref] for ref in waiting)
    # Every reason of a code is Russian but for 1C's names and values; the old one as stored.
    assert ru["old-1"] == en["old-1"] == OLD_TEXT
    for ref, said in ru.items():
        if ref != "old-1":
            assert not LATIN.search(_without_values(said)), said
    assert set(ru) == set(en) == {i["ref"] for i in api}

    # The API: the English message as before, a stable code and its parameters.
    by_ref = {i["ref"]: i for i in api}
    assert by_ref[lost]["reason"] == "`Статус` (status): unknown value 'Потеряна'"
    assert by_ref[lost]["reason_code"] == "unknown_value"
    assert by_ref[lost]["reason_params"] == {
        "field": "status",
        "value": "Потеряна",
        "at": ["Статус"],
    }
    assert by_ref[headless]["reason"] == "missing required field `Контрагент` (counterparty)"
    assert by_ref[headless]["reason_code"] == "missing_field"
    assert by_ref[priced]["reason_params"]["at"] == ["Услуги", 1, "Сумма"]
    assert by_ref[refused]["reason_code"] == "invalid_field"
    assert by_ref[refused]["reason_params"]["field"] == "inn"
    assert {by_ref[ref]["reason_code"] for ref in owned} == {"unknown_counterparty"}
    assert {by_ref[ref]["reason_code"] for ref in waiting} == {"unknown_order"}
    assert by_ref["old-1"]["reason"] == OLD_TEXT
    assert (by_ref["old-1"]["reason_code"], by_ref["old-1"]["reason_params"]) == ("other", {})


SAMPLES: dict[str, dict[str, Any]] = {
    "missing_field": {"field": "counterparty", "at": ["Контрагент"]},
    "wrong_type": {"field": "services[0].amount", "at": ["Услуги", 1, "Сумма"],
                   "expected": "int", "got": "str"},
    "invalid_data": {"field": "date", "at": ["Дата"], "detail": "Invalid RFC3339 datetime"},
    "unreadable": {"detail": "Expected `object`, got `array`"},
    "unknown_value": {"field": "status", "at": ["Статус"], "value": "Потеряна"},
    "cannot_delete": {"detail": "Object missing required field `inn`"},
    "sink_failed": {"sink": "shipments.order", "title_ru": "Заявки на перевозку",
                    "title_en": "Orders", "error": "IntegrityError: duplicate key",
                    "error_type": "IntegrityError"},
    "empty_id": {},
    "invalid_field": {"field": "inn", "at": ["ИНН"],
                      "message": "ИНН check digits do not match: check the number"},
    "unknown_counterparty": {"field": "counterparty", "value": "cp-1"},
    "unknown_contract": {"field": "contract", "at": ["Договор"], "value": "k-1"},
    "unknown_order": {"field": "order", "at": ["Заявка"], "value": "o-1"},
    "foreign_reference": {"kind": "contract", "value": "k-1", "owner": "cp-2", "holder": "cp-1"},
    "not_our_request": {"value": "1"},
    "answer_mismatch": {"external_id": "z-1", "portal_id": "p-1", "linked": "z-2"},
}  # fmt: skip


def test_every_code_has_a_russian_and_an_english_text() -> None:
    assert set(SAMPLES) == set(reasons.CODES)
    for code, params in SAMPLES.items():
        ru = reasons.text(code, params, "ru", "stored")
        en = reasons.text(code, params, "en", "stored")
        assert "stored" not in (ru, en), code  # every placeholder filled
        assert ru != en, code
        assert not LATIN.search(_without_values(ru)), (code, ru)
    assert reasons.text("unknown_contract", SAMPLES["unknown_contract"], "ru", "") == (
        "`Договор`: неизвестный договор «k-1»"
    )
    # Without 1C's attribute the field is named in the reader's words.
    assert reasons.text("unknown_counterparty", SAMPLES["unknown_counterparty"], "ru", "") == (
        "Контрагент: неизвестный контрагент «cp-1»"
    )
    assert reasons.text("foreign_reference", SAMPLES["foreign_reference"], "ru", "") == (
        "Договор «k-1» принадлежит другому контрагенту: «cp-2», а не «cp-1»"
    )
    assert reasons.text("foreign_reference", SAMPLES["foreign_reference"], "en", "") == (
        "contract 'k-1' belongs to another counterparty: 'cp-2', not 'cp-1'"
    )
    assert reasons.text("sink_failed", SAMPLES["sink_failed"], "ru", "") == (
        "Не удалось записать в портал («Заявки на перевозку»): внутренняя ошибка"
        " `IntegrityError`; сообщите администратору портала"
    )
    assert reasons.text("sink_failed", SAMPLES["sink_failed"], "en", "") == (
        "could not be written (Orders): IntegrityError: duplicate key"
    )
    # A sink's failure kept before its title was: named by the sink, the error by its kind.
    before = {"sink": "shipments.order", "error": "IntegrityError: duplicate key"}
    assert reasons.text("sink_failed", before, "ru", "") == (
        "Не удалось записать в портал («shipments.order»): внутренняя ошибка"
        " `IntegrityError`; сообщите администратору портала"
    )
    assert reasons.text("sink_failed", before, "en", "") == (
        "could not be written (shipments.order): IntegrityError: duplicate key"
    )
    # A code of no text, or parameters the text cannot be filled with: the stored message.
    assert reasons.text("made_up", {"x": "1"}, "ru", "as stored") == "as stored"
    assert reasons.text(None, None, "ru", "as stored") == "as stored"
    assert reasons.text("unknown_order", {}, "ru", "as stored") == "as stored"


async def test_a_sink_that_fails_outright_is_said_in_the_readers_language(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """The contracts' sink raises on every batch: each contract is set aside with the
    sink's title in the reader's language and the error's kind; the API keeps the English
    message with the error's text."""

    async def crash(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    svc = integration(host)
    svc._sinks = [
        dataclasses.replace(s, apply=crash) if s.name == "shipments.contract" else s
        for s in await svc.ordered_sinks()
    ]
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=await build_app(host)),
        base_url="http://127.0.0.1:8000",
    ) as web:
        await staff(host, web, "ru")
        ru = reasons_on((await web.get("/integration/quarantine")).text, "Причина")
        await staff(host, web, "en")
        en = reasons_on((await web.get("/integration/quarantine")).text, "Reason")
        api = (await web.get("/api/integration/quarantine?limit=500")).json()["items"]

    contracts = set(generated.contracts)
    assert contracts <= set(ru)
    for ref in contracts:
        assert ru[ref] == (
            "Не удалось записать в портал («Договоры»): внутренняя ошибка `RuntimeError`;"
            " сообщите администратору портала"
        )
        assert not LATIN.search(_without_values(ru[ref]))
        assert en[ref] == "could not be written (Contracts): RuntimeError: disk on fire"
    by_ref = {i["ref"]: i for i in api}
    for ref in contracts:
        assert by_ref[ref]["reason"] == "shipments.contract: RuntimeError: disk on fire"
        assert by_ref[ref]["reason_code"] == "sink_failed"
        assert by_ref[ref]["reason_params"] == {
            "sink": "shipments.contract",
            "title_ru": "Договоры",
            "title_en": "Contracts",
            "error": "RuntimeError: disk on fire",
            "error_type": "RuntimeError",
        }


async def _columns(host: Host) -> set[str]:
    async with host.db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns("integration_quarantine"))
    return {str(c["name"]) for c in found}


async def test_the_reason_code_revision_keeps_the_records_there(empty_database_url: str) -> None:
    before = "e4b8c2a9d713"
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("companies")
        await host.migrations.upgrade("shipments")
        await host.migrations.upgrade("integration", before)
        assert "reason_code" not in await _columns(host)
        async with host.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO integration_quarantine (source, entity, ref, reason, state,"
                    " attempts, created_at, updated_at) VALUES ('onec', 'order', 'o-1',"
                    " :reason, 'open', 1, :now, :now)"
                ),
                {"reason": OLD_TEXT, "now": AT},
            )
        await host.migrations.upgrade("integration")
        assert await host.migrations.diff("integration") == []
        async with host.db.engine.connect() as conn:
            row = (await conn.execute(m.quarantine.select())).one()
        assert (row.reason, row.reason_code, row.reason_params) == (OLD_TEXT, None, None)
        assert reasons.shown(row, "ru") == reasons.shown(row, "en") == OLD_TEXT
        await host.migrations.downgrade("integration", before)
        assert "reason_code" not in await _columns(host)
        assert "reason_params" not in await _columns(host)
    finally:
        await host.db.dispose()


def test_the_integration_doc_names_every_reason_code() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "integration.md").read_text()
    assert [code for code in [*reasons.CODES, reasons.OTHER] if f"`{code}`" not in doc] == []
