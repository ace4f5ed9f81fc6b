"""Personal data (issue 19.5): retention removes exactly what is past its period; a person
downloads what the portal holds about them, and nothing of anyone else; staff remove a
person, leaving no copy of their name, e-mail or phone, and orders' requests keep an
anonymised author. Over HTTP where a person would act."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text

from kabinet.identity.models import Account, Code, Login, SecurityEvent
from kabinet.identity.services import IDENTITY
from kabinet.models import event, event_handling
from kabinet.personal import PURGE_ACTOR
from kabinet.testkit import Person, Portal
from kabinet_companies.services import COMPANIES
from kabinet_notifications.models import delivery, preference
from kabinet_shipments import models as shipments
from kabinet_shipments.samples import make_order

pytestmark = pytest.mark.smoke
DAY = dt.timedelta(days=1)


async def _someone(portal: Portal, organization: int) -> tuple[Person, str]:
    """A client of ``organization`` with a unique name, e-mail and phone: (person, phone)."""
    tag = uuid.uuid4().hex[:10]
    phone = "+7916" + str(uuid.uuid4().int % 10**7).zfill(7)
    account = await portal.host.services.of(IDENTITY).create_account(
        full_name=f"Персона {tag}",
        email=f"pd-{tag}@example.test",
        phone=phone,
        email_confirmed=True,
    )
    person = Person(id=account.id, name=account.full_name, email=f"pd-{tag}@example.test")
    await portal.grant(person, "client", organization)
    companies = portal.host.services.of(COMPANIES)
    await companies.ensure_organization(organization, f"Компания {organization}")
    async with portal.host.db.session() as s:
        await companies.add_member(s, person.id, organization)
    return person, str(account.phone)


async def _traces(portal: Portal, person: Person, at: dt.datetime) -> None:
    """Rows of ``person`` in identity's and notifications' tables, made at ``at``."""
    async with portal.host.db.session() as s:
        s.add(Login(account_id=person.id, at=at, success=True, address="203.0.113.7"))
        s.add(
            Code(
                account_id=person.id,
                purpose="confirm_email",
                channel="email",
                target=person.email,
                code_hash=uuid.uuid4().hex,
                created_at=at,
                expires_at=at + dt.timedelta(minutes=10),
                resend_after=at,
            )
        )
        s.add(SecurityEvent(at=at, action="login", subject_id=person.id, address="203.0.113.7"))
        await s.execute(
            insert(delivery).values(
                key=uuid.uuid4().hex,
                event="shipments.order.status_changed",
                person_id=person.id,
                channel="email",
                address=person.email,
                subject=f"Заказ для {person.name}",
                body=f"Здравствуйте, {person.name}",
                status="sent",
                created_at=at,
                updated_at=at,
            )
        )


async def _count(portal: Portal, person: Person) -> dict[str, int]:
    async with portal.host.db.reader() as s:

        async def of(table: Any, column: Any, *where: Any) -> int:
            found = await s.execute(select(table).where(column == person.id, *where))
            return len(found.all())

        return {
            "login": await of(Login, Login.account_id),
            "code": await of(Code, Code.account_id),
            "audit": await of(  # the lines the test wrote, not its account's creation
                SecurityEvent,
                SecurityEvent.subject_id,
                SecurityEvent.action.in_(["login", "logout"]),
            ),
            "delivery": await of(delivery, delivery.c.person_id),
        }


async def test_hook_personal_data_retention_removes_exactly_what_is_past_its_period(
    portal: Portal,
) -> None:
    org = portal.organization_id()
    person, _phone = await _someone(portal, org)
    now = portal.clock.now()
    # each record once just past its period and once just inside it (the defaults:
    # codes 30 days, sign-ins 365, audit 3 years, deliveries 180)
    await _traces(portal, person, now - 1096 * DAY)  # past every period
    await _traces(portal, person, now - 29 * DAY)  # inside every period
    async with portal.host.db.session() as s:  # between: past some periods, not others
        s.add(Login(account_id=person.id, at=now - 364 * DAY, success=False))
        s.add(Login(account_id=person.id, at=now - 366 * DAY, success=False))
        s.add(SecurityEvent(at=now - 1094 * DAY, action="logout", subject_id=person.id))
    assert await _count(portal, person) == {"login": 4, "code": 2, "audit": 3, "delivery": 2}

    await portal.host.jobs.send(PURGE_ACTOR)
    await portal.drain()

    assert await _count(portal, person) == {"login": 2, "code": 1, "audit": 2, "delivery": 1}
    async with portal.host.db.reader() as s:
        kept = sorted(
            (await s.scalars(select(Login.at).where(Login.account_id == person.id))).all()
        )
    assert [now - at for at in kept] == [364 * DAY, 29 * DAY]


@pytest.mark.kabinet_settings(
    identity={"logins_kept_days": 10}, notifications={"deliveries_kept_days": 0}
)
async def test_retention_periods_are_settings_and_zero_keeps_for_good(portal: Portal) -> None:
    person, _phone = await _someone(portal, portal.organization_id())
    await _traces(portal, person, portal.clock.now() - 11 * DAY)
    await _traces(portal, person, portal.clock.now() - 5000 * DAY)
    await portal.host.jobs.send(PURGE_ACTOR)
    await portal.drain()
    # sign-ins past 10 days go; deliveries stay for good; codes and audit by their defaults
    assert await _count(portal, person) == {"login": 0, "code": 1, "audit": 1, "delivery": 2}


async def test_old_events_go_once_every_subscriber_handled_them(portal: Portal) -> None:
    now = portal.clock.now()
    ids = []
    async with portal.host.db.session() as s:
        for state in ("handled", "failed", None):
            made = await s.execute(
                insert(event)
                .values(
                    type="identity.account.updated",
                    payload={"account_id": 1, "state": str(state)},
                    created_at=now - 31 * DAY,
                    relayed_at=now - 31 * DAY,
                )
                .returning(event.c.id)
            )
            ids.append(made.scalar_one())
            if state is not None:
                await s.execute(
                    insert(event_handling).values(
                        event_id=ids[-1], subscriber="t", state=state, updated_at=now
                    )
                )
    await portal.host.jobs.send(PURGE_ACTOR)
    await portal.drain()
    async with portal.host.db.reader() as s:
        left = set((await s.scalars(select(event.c.id).where(event.c.id.in_(ids)))).all())
    # handled by all: gone; a failed handling an admin may retry: kept
    assert left == {ids[1]}


async def test_the_purge_is_scheduled_nightly(portal: Portal) -> None:
    found = {
        s.name: s
        for _p, s in portal.host.plugins.flat(
            await portal.host.plugins.acall("schedules", host=portal.host)
        )
    }
    assert found["host.personal_data.purge"].actor == PURGE_ACTOR
    assert found["host.personal_data.purge"].cron == "17 3 * * *"


async def _request(portal: Portal, person: Person, order_id: int, comment: str) -> None:
    client = await portal.signed_in(person)
    sent = await client.post(
        f"/shipments/orders/{order_id}/requests", data={"kind": "cancel", "comment": comment}
    )
    assert sent.status_code in {200, 303}, sent.text


async def test_a_person_downloads_their_data_and_nothing_of_anyone_else(portal: Portal) -> None:
    org = portal.organization_id()
    me, my_phone = await _someone(portal, org)
    other, other_phone = await _someone(portal, org)  # same company, their own data
    for person in (me, other):
        await _traces(portal, person, portal.clock.now())
        async with portal.host.db.session() as s:
            await s.execute(
                insert(preference).values(
                    person_id=person.id,
                    event="shipments.order.status_changed",
                    channel="sms",
                    enabled=True,
                )
            )
    await _request(portal, me, (await make_order(portal.host, org))["order_id"], "Моя отмена")
    theirs = (await make_order(portal.host, org))["order_id"]  # one open request an order
    await _request(portal, other, theirs, "Чужая отмена")

    client = await portal.signed_in(me)
    profile = await client.get("/identity/profile")
    assert "Скачать мои данные" in profile.text
    assert 'href="/identity/profile/data"' in profile.text
    english = await portal.signed_in(me, language="en")
    assert "Download my data" in (await english.get("/identity/profile")).text
    got = await client.get("/identity/profile/data")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/json")
    assert "attachment" in got.headers["content-disposition"]
    data = json.loads(got.content)
    plugins = data["plugins"]
    tables = {t for part in plugins.values() for t in part}
    assert {
        "identity_account",
        "identity_session",
        "identity_login",
        "identity_code",
        "identity_security_event",
        "identity_api_token",
        "roles_grant",
        "companies_contact",
        "companies_membership",
        "companies_agreement",
        "notifications_preference",
        "notifications_delivery",
        "shipments_request",
    } <= tables
    account = plugins["identity"]["identity_account"][0]
    assert (account["email"], account["phone"], account["full_name"]) == (
        me.email,
        my_phone,
        me.name,
    )
    assert "password_hash" not in account
    assert plugins["identity"]["identity_session"]  # the session downloading it
    assert plugins["identity"]["identity_login"][0]["address"] == "203.0.113.7"
    assert [g["role"] for g in plugins["roles"]["roles_grant"]] == ["client"]
    assert [m["organization_id"] for m in plugins["companies"]["companies_membership"]] == [org]
    assert plugins["notifications"]["notifications_delivery"][0]["address"] == me.email
    assert [r["comment"] for r in plugins["shipments"]["shipments_request"]] == ["Моя отмена"]
    raw = got.content.decode()
    for theirs in (other.email, other.name, other_phone, "Чужая отмена"):
        assert theirs not in raw

    # another person's data, asked by their number: refused to a client, 404 when none
    assert (await client.get(f"/identity/accounts/{other.id}/data")).status_code == 403
    admin = await portal.signed_in(await portal.person("admin"))
    assert (await admin.get("/identity/accounts/999999999/data")).status_code == 404
    answer = await admin.get(f"/identity/accounts/{other.id}/data")
    assert json.loads(answer.content)["plugins"]["identity"]["identity_account"][0]["email"] == (
        other.email
    )
    anonymous = await portal.client.get("/identity/profile/data")
    assert anonymous.status_code in {302, 303, 401}


async def _tables_holding(portal: Portal, needles: list[str]) -> dict[str, list[str]]:
    """Every table of the database whose rows, as text, contain one of ``needles``."""

    def names(conn: Any) -> list[str]:
        return sorted(inspect(conn).get_table_names())

    found: dict[str, list[str]] = {}
    async with portal.host.db.engine.connect() as conn:
        for table in await conn.run_sync(names):
            for row in (await conn.execute(text(f'SELECT * FROM "{table}"'))).all():  # noqa: S608
                line = " ".join(str(v) for v in row)
                hits = [n for n in needles if n.lower() in line.lower()]
                if hits:
                    found.setdefault(table, []).extend(hits)
    return found


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_staff_remove_a_person_and_no_personal_data_is_left(
    portal: Portal, language: str
) -> None:
    org = portal.organization_id()
    person, phone = await _someone(portal, org)
    await _traces(portal, person, portal.clock.now())
    order = await make_order(portal.host, org)
    await _request(portal, person, order["order_id"], "Отмените, пожалуйста")
    staff = await portal.person("admin")
    admin = await portal.signed_in(staff, language=language)
    needles = [person.email, person.name, phone, phone.removeprefix("+")]
    assert set(await _tables_holding(portal, needles)) >= {"identity_account", "companies_contact"}

    page = await admin.get(f"/identity/accounts/{person.id}/erase")
    assert page.status_code == 200
    assert ("Удаление человека" if language == "ru" else "Remove a person") in page.text
    wrong = await admin.post(f"/identity/accounts/{person.id}/erase", data={"confirm": "0"})
    assert wrong.status_code == 400
    assert 'name="confirm"' in wrong.text
    assert ("введите номер" if language == "ru" else "Type the account's number") in wrong.text
    assert await _tables_holding(portal, [person.email]) != {}

    done = await admin.post(
        f"/identity/accounts/{person.id}/erase", data={"confirm": str(person.id)}
    )
    assert done.status_code == 303

    assert await _tables_holding(portal, needles) == {}
    async with portal.host.db.reader() as s:
        account = await s.get(Account, person.id)
        assert account is not None
        assert (account.status, account.email, account.phone) == ("disabled", None, None)
        request = (
            await s.execute(
                select(shipments.request).where(shipments.request.c.order_id == order["order_id"])
            )
        ).one()
        line = (
            await s.execute(
                select(SecurityEvent).where(
                    SecurityEvent.subject_id == person.id, SecurityEvent.action == "account.erased"
                )
            )
        ).scalar_one()
    # the request stays with the order, its author anonymised
    assert (request.person_id, request.comment) == (person.id, "Отмените, пожалуйста")
    assert request.person_name != person.name
    assert line.actor_id == staff.id
    # their sessions ended: the person is signed out
    signed = await portal.signed_in(person)
    assert (await signed.get("/identity/profile")).status_code in {302, 303, 401}
    # the security log names the removal in the reader's language
    log = await admin.get("/identity/audit", params={"person": str(person.id)})
    assert ("Человек удалён" if language == "ru" else "Person removed") in log.text


async def test_staff_cannot_remove_themselves(portal: Portal) -> None:
    staff = await portal.person("admin")
    admin = await portal.signed_in(staff)
    refused = await admin.post(
        f"/identity/accounts/{staff.id}/erase", data={"confirm": str(staff.id)}
    )
    assert refused.status_code == 409
    async with portal.host.db.reader() as s:
        assert (await s.get(Account, staff.id)).email == staff.email  # type: ignore[union-attr]


async def test_route_matrix_covers_the_personal_data_routes(portal: Portal) -> None:
    assert await portal.route_faults("/identity/accounts") == []
    assert await portal.route_faults("/identity/profile/data") == []
