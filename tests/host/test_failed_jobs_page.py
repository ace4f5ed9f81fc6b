"""The admins' page of failed jobs names what a person reads in their language: a job by
the title its actor declares (else by its app), the person it concerns by their name, an
event and its subscriber by their app, and when it failed in the reader's time zone; a
retry's message is in their language too. Codes are kept only as small print."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from kabinet import i18n, models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.jobs import EmbeddedJobs, stop_embedded
from kabinet.roles.services import ROLES
from kabinet.testing import PluginFactory, drop_database, migrated_database
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

PLUGIN = """
@hookimpl
def event_types():
    return [EventType(name="jobpage.invoice.overdue")]

@hookimpl
def subscriptions(host):
    async def notify(event, session):
        raise ConnectionError("SMS gateway is not answering")

    return [Subscription(event="jobpage.invoice.overdue", name="jobpage.notify", handler=notify)]

@hookimpl
def actors(host):
    async def remind(person_id):
        raise ConnectionError("SMTP is not answering")

    async def tidy():
        raise RuntimeError("disk is full")

    return [
        Actor(
            name="jobpage.remind",
            fn=remind,
            max_retries=0,
            title={"ru": "Напоминание об оплате", "en": "Payment reminder"},
        ),
        Actor(name="jobpage.tidy", fn=tidy, max_retries=0),
    ]
"""
ZONE = "Asia/Vladivostok"  # UTC+10: the day and hour differ from the server's UTC


@pytest.fixture(scope="module")
async def own_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("failed-jobs-page"))
    yield url
    await drop_database(url)


@pytest.fixture
async def host(
    plugin_factory: PluginFactory, own_url: str, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Host]:
    plugin_factory.add("jobpage", PLUGIN)
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "failed-jobs-page"\n')
    made = await Host.create(
        settings,
        env={"KABINET__HOST__DATABASE_URL": own_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    await made.startup()
    await stop_embedded(made)  # the test runs the jobs itself
    async with made.db.session() as s:  # no earlier test's failures
        for table in (models.failed_job, models.event_handling, models.event):
            await s.execute(delete(table))
    yield made
    await made.shutdown()


async def _admin(host: Host, lang: str) -> dict[str, str]:
    """The cookies of a new admin living in Vladivostok, reading in ``lang``."""
    identity = host.services.of(IDENTITY)
    account = await identity.create_account(
        full_name="Ольга Админова",
        email=f"jobs-page-{uuid.uuid4().hex[:12]}@example.test",
        timezone=ZONE,
    )
    await host.services.of(ROLES).grant(int(account.id), "admin", None)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=int(account.id), created_at=now, last_seen_at=now)
    )
    return {identity.settings.cookie_name: token, "kabinet_lang": lang}


def _rows(page: str, section: int = 1) -> list[str]:
    """The visible text of each row of a table (1: failed jobs, 2: events with errors),
    without the small print."""
    table = page.split("<h2>", 2)[section]
    rows = []
    for row in re.findall(r"(?s)<tbody>.*?</tbody>", table)[0].split("</tr>")[:-1]:
        row = re.sub(r"(?s)<small>.*?</small>|<pre>.*?</pre>|<form.*?</form>", " ", row)
        rows.append(" ".join(html.unescape(re.sub(r"(?s)<[^>]+>", " ", row)).split()))
    return rows


@pytest.mark.parametrize(
    ("lang", "title", "app", "concerns"),
    [
        ("ru", "Напоминание об оплате", "jobpage", "Кого касается"),
        ("en", "Payment reminder", "jobpage", "Concerns"),
    ],
)
async def test_failed_jobs_are_named_for_people_in_their_language_and_zone(
    host: Host, lang: str, title: str, app: str, concerns: str
) -> None:
    identity = host.services.of(IDENTITY)
    client = await identity.create_account(
        full_name="Анна Петрова", email=f"anna-{uuid.uuid4().hex[:8]}@example.test"
    )
    person = int(client.id)
    # Each job fails on its only attempt and is recorded for the admins.
    assert not await host.jobs.execute(host.jobs.message("jobpage.remind", {"person_id": person}))
    assert not await host.jobs.execute(host.jobs.message("jobpage.tidy", {}))
    # An event about her whose subscriber fails (retried later: shown with its error).
    async with host.db.session() as s:
        await host.events.publish(s, "jobpage.invoice.overdue", {"person_id": person})
    await host.events.relay()
    assert isinstance(host.jobs, EmbeddedJobs)
    await host.jobs.drain()
    failed = await host.jobs.failed()
    when = {j.actor: j.failed_at for j in failed}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=await build_app(host)),
        base_url="http://127.0.0.1:8000",
        cookies=await _admin(host, lang),
    ) as web:
        page = await web.get("/host/jobs")
        assert page.status_code == 200, page.text
        remind, tidy = sorted(_rows(page.text), key=lambda r: not r.startswith(title))
        here = " ".join(i18n.format_datetime(when["jobpage.remind"], lang, ZONE, "short").split())
        assert "19:00" in here or "7:00 PM" in here  # 09:00 UTC, the frozen clock's
        assert here != " ".join(
            i18n.format_datetime(when["jobpage.remind"], lang, "UTC", "short").split()
        )
        # The job by its title, the person by their name, the time in the reader's zone.
        assert remind.startswith(f"{title} Анна Петрова {here} 1 ")
        assert "SMTP is not answering" in remind  # the program's own error, as it said it
        # A job of no title: its app's (the throwaway plugin's title is its name).
        assert tidy.startswith(f"{app} ")
        assert "jobpage.tidy" not in tidy
        assert "jobpage.remind" not in remind
        assert f">{concerns}</th>" in page.text
        # The codes stay, as small print, for whoever reads the logs.
        assert "<code>jobpage.remind</code>" in page.text
        # The event and its subscriber by their app, the person it is about by her name.
        [event] = _rows(page.text, 2)
        retrying = {"ru": "повторяется", "en": "retrying"}[lang]
        assert event.startswith(f"{app} Анна Петрова {app} {retrying} · 1 ")
        assert "SMS gateway is not answering" in event

        # Retrying says so in the reader's language.
        csrf = re.search(r'name="([^"]+)" value="([^"]+)"', page.text)
        assert csrf
        remind_id = next(j.id for j in failed if j.actor == "jobpage.remind")
        sent = await web.post(
            f"/host/jobs/failed/{remind_id}/retry",
            data={csrf.group(1): csrf.group(2)},
            follow_redirects=True,
        )
        assert sent.status_code == 200
        said = {"ru": f"Задача {remind_id} отправлена снова.", "en": f"Job {remind_id} sent again."}
        assert said[lang] in html.unescape(sent.text)


async def test_builtin_jobs_declare_their_titles(host: Host) -> None:
    from kabinet.builtin.api import Labels

    ru, en = Labels(host, "ru", {}), Labels(host, "en", {})
    assert ru.job("host.deliver_event") == "Передача события обработчику"
    assert en.job("host.deliver_event") == "Event delivery to a subscriber"
    for name, (_plugin, actor) in host.actors.items():
        if name.startswith("host."):
            assert actor.title.get("ru"), name
            assert actor.title.get("en"), name
    # An actor no plugin declares any more (a job recorded before an upgrade): its code.
    assert ru.job("gone.away") == "gone.away"
    # The person an event delivery concerns is read from the event it carries.
    assert Labels(host, "ru", {7: "Анна"}).person({"event": {"payload": {"person_id": 7}}}) == (
        "Анна"
    )
    assert ru.person({"person_id": True}) == ""
