"""What operators and staff see of the integration (issue 15, point 5), from outside:

- a 1C outage of many intervals leaves ``/ready`` at 200 (the portal keeps serving) while
  the sync's alert on ``/health/checks`` names the source;
- ``kabinet check`` before the migrations names the pending revisions of each plugin
  instead of failing on a table that does not exist;
- the quarantine's JSON API, for staff only, with reasons in 1C's attribute names (a
  renamed configuration's own names);
- a time 1C gives with a date (``ДатаПогрузки``…) reaches the order card and the API.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from integration_support import settings_text, wipe

from kabinet.cli import cli
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.roles.services import ROLES
from kabinet.testing import create_empty_database, drop_database
from kabinet.web import build_app
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCData, OneCServer, Renaming, generate

pytestmark = pytest.mark.smoke
HostFactory = Callable[..., Awaitable[Host]]
ORDERS = "Document_ЗаявкаНаПеревозку"
_orgs = itertools.count(770_001)


async def session_of(
    host: Host, role: str, org: int | None = None, timezone: str | None = None
) -> str:
    """The Cookie header of a new person holding ``role`` (in ``org``; None: globally)."""
    identity = host.services.of(IDENTITY)
    account = await identity.create_account(
        full_name=f"Оператор {role}",
        email=f"operations-{uuid.uuid4().hex[:12]}@example.test",
        timezone=timezone,
    )
    await host.services.of(ROLES).grant(int(account.id), role, org)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=int(account.id), created_at=now, last_seen_at=now)
    )
    return f"{identity.settings.cookie_name}={token}"


async def get(http: httpx.AsyncClient, path: str, cookie: str = "") -> httpx.Response:
    http.cookies.clear()
    return await http.get(path, headers={"Cookie": cookie} if cookie else {})


# -- readiness is this process; the sync is an alert ---------------------------------------


async def test_ready_stays_up_through_a_1c_outage_while_the_sync_alert_names_it(
    host: Host,
    onec: OneCServer,
    generated: Generated,
    clock: FrozenClock,
    web: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Before the first sync: the portal can serve; the alert says the source never synced.
    ready = await get(web, "/ready")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["host.database"]["state"] == "ok"
    assert ready.json()["checks"]["host.migrations"]["state"] == "ok"
    assert "integration.sync" not in ready.json()["checks"]
    checks = await get(web, "/health/checks")
    assert checks.status_code == 503
    alert = checks.json()["checks"]["integration.sync"]
    assert alert["kind"] == "alert"
    assert alert["error"] == "no successful sync for three intervals: onec"

    assert (await integration(host).run("onec")).state == "succeeded"
    assert (await get(web, "/health/checks")).status_code == 200

    # 1C goes down for two hours (six intervals of 20 minutes), every run failing.
    onec.fault("status", status=503, match="ИзмененияДляПортала", times=1000)
    for _ in range(3):
        clock.advance(40 * 60)
        assert (await integration(host).run("onec")).state == "failed"
        ready = await get(web, "/ready")
        assert ready.status_code == 200, ready.json()
        assert ready.json()["status"] == "ready"
    checks = await get(web, "/health/checks")
    assert checks.status_code == 503
    assert checks.json()["checks"]["integration.sync"] == {
        "state": "failed",
        "kind": "alert",
        "error": "no successful sync for three intervals: onec",
    }
    assert checks.json()["checks"]["host.database"] == {"state": "ok", "kind": "readiness"}
    assert any(
        r.levelname == "WARNING" and "integration.sync" in r.getMessage() for r in caplog.records
    )

    # 1C is back: the next run succeeds and the alert clears.
    onec.faults.clear()
    assert (await integration(host).run("onec")).state == "succeeded"
    assert (await get(web, "/health/checks")).status_code == 200


# -- kabinet check before the migrations ---------------------------------------------------


def _check(settings: Path, url: str) -> Any:
    result = CliRunner().invoke(
        cli,
        ["--settings", str(settings), "check"],
        env={"KABINET__HOST__DATABASE_URL": url},
        prog_name="kabinet",
    )
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


async def test_check_before_the_migrations_names_the_pending_ones(
    tmp_path: Path, onec: OneCServer
) -> None:
    url = await create_empty_database(tmp_path)
    settings = tmp_path / "settings.toml"
    settings.write_text(settings_text(onec.base_url))
    try:
        host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": url})
        try:
            revisions = {
                s.name: [r.revision for r in reversed(list(s.script().walk_revisions()))]
                for s in host.schemas
            }
            # The platform and the shipments app migrated, the integration app not yet.
            await host.migrations.upgrade("shipments")
        finally:
            await host.db.dispose()
        result = await asyncio.to_thread(_check, settings, url)
        out = result.output
        assert "does not exist" not in out, out
        assert "no such table" not in out, out
        assert "Traceback" not in out
        lines = {line.split(":")[0]: line for line in out.splitlines()}
        [pending] = [x for x in out.splitlines() if x.startswith("migrations: integration ")]
        assert pending.startswith("migrations: integration is at base, head is ")
        assert pending.endswith("; pending: " + ", ".join(revisions["integration"]))
        assert len(revisions["integration"]) > 1
        assert "shipments is at" not in out  # applied
        # The sync's check reads the integration app's tables: not run, saying why.
        assert lines["integration.sync"].startswith(
            "integration.sync: not run: migrations pending: integration ("
            + ", ".join(revisions["integration"])
        )
        assert "host.database: ok" in out
        assert "kabinet db upgrade" in out
        assert result.exit_code == 0, out  # nothing is wrong but what upgrade applies
    finally:
        await drop_database(url)


async def test_ready_before_the_migrations_is_503_naming_them(
    tmp_path: Path, onec: OneCServer
) -> None:
    url = await create_empty_database(tmp_path)
    settings = tmp_path / "settings.toml"
    settings.write_text(settings_text(onec.base_url))
    try:
        host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": url})
        try:
            app = await build_app(host)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
            ) as http:
                ready = await http.get("/ready")
                assert ready.status_code == 503
                body = ready.json()["checks"]
                assert body["host.migrations"]["state"] == "failed"
                assert "integration (" in body["host.migrations"]["error"]
                await host.migrations.upgrade()
                ready = await http.get("/ready")
                assert ready.status_code == 200, ready.json()
        finally:
            await host.db.dispose()
    finally:
        await drop_database(url)


# -- the quarantine's JSON API, in 1C's names ----------------------------------------------

RENAMED = (
    "[integration.sources.onec.fields.order]\n"
    'status = "Состояние"\ncounterparty = "Клиент_Key"\n'
    "[integration.sources.onec.fields.contract]\n"
    'status = "Состояние"\n'
    "[integration.sources.onec.fields.invoice]\n"
    'counterparty = "Клиент_Key"\n'
    '[integration.sources.onec.fields."order.services"]\n'
    'amount = "СуммаУслуги"\n'
)


async def test_the_quarantine_api_names_1cs_attributes_for_staff_only(
    make_host: HostFactory, onec: OneCServer
) -> None:
    onec.data = OneCData(
        Renaming(
            fields={"Статус": "Состояние", "Контрагент_Key": "Клиент_Key", "Сумма": "СуммаУслуги"}
        )
    )
    made = generate(onec.data)
    host = await make_host(source=RENAMED)
    try:
        lost, headless, priced = made.orders[0], made.orders[1], made.orders[2]
        broken = dict(onec.data.get(ORDERS, lost) or {})
        broken["Состояние"] = "Потеряна"
        onec.data.sets[ORDERS][lost] = broken
        no_client = dict(onec.data.get(ORDERS, headless) or {})
        del no_client["Клиент_Key"]
        onec.data.sets[ORDERS][headless] = no_client
        bad_sum = dict(onec.data.get(ORDERS, priced) or {})
        bad_sum["Услуги"] = [dict(bad_sum["Услуги"][0], СуммаУслуги="много")]
        onec.data.sets[ORDERS][priced] = bad_sum
        out = await integration(host).run("onec")
        assert out.state == "succeeded", out.error
        assert out.counts.quarantined >= 3  # and invoices naming those orders

        app = await build_app(host)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as http:
            staff = await session_of(host, "admin")
            listed = await get(http, "/api/integration/quarantine?entity=order", staff)
            assert listed.status_code == 200, listed.text
            body = listed.json()
            reasons = {i["ref"]: i["reason"] for i in body["items"]}
            assert set(reasons) == {lost, headless, priced}
            assert reasons[headless] == "missing required field `Клиент` (counterparty)"
            assert reasons[lost].startswith("`Состояние` (status): unknown value 'Потеряна'")
            assert reasons[priced].endswith(
                " - at `Услуги`, line 1, `СуммаУслуги` (services[0].amount)"
            )
            assert body["next"] is None
            assert all(i["payload"] is None for i in body["items"])  # asked for separately

            # Pages: newest first, ``next`` goes on from where the page ended.
            first = (
                await get(http, "/api/integration/quarantine?entity=order&limit=2", staff)
            ).json()
            assert len(first["items"]) == 2
            assert first["next"] == first["items"][-1]["id"]
            rest = await get(
                http,
                f"/api/integration/quarantine?entity=order&limit=2&before={first['next']}",
                staff,
            )
            ids = [i["id"] for i in first["items"] + rest.json()["items"]]
            assert ids == sorted(ids, reverse=True)
            assert len(ids) == 3
            assert rest.json()["next"] is None
            assert (await get(http, "/api/integration/quarantine?state=dismissed", staff)).json()[
                "items"
            ] == []
            bad = await get(http, "/api/integration/quarantine?entity=shipment", staff)
            assert bad.status_code == 400
            assert "entity" in bad.text

            one_id = next(i["id"] for i in body["items"] if i["ref"] == lost)
            one = await get(http, f"/api/integration/quarantine/{one_id}", staff)
            assert one.status_code == 200
            assert one.json()["payload"]["Состояние"] == "Потеряна"  # 1C's object as it came
            assert one.json()["reason"] == reasons[lost]
            assert (
                await get(http, "/api/integration/quarantine/999999999", staff)
            ).status_code == (404)

            # A client of a company: refused, the list and the record alike; anonymous: 401.
            org = next(_orgs)
            client = await session_of(host, "client", org)
            for path in ("/api/integration/quarantine", f"/api/integration/quarantine/{one_id}"):
                refused = await get(http, path, client)
                assert refused.status_code == 403, (path, refused.text)
                assert "Потеряна" not in refused.text
                assert (await get(http, path)).status_code == 401
    finally:
        await wipe(host)


# -- docs/integration.md keeps up with the settings and the mapping -----------------------


def test_integration_doc_names_every_setting_and_every_1c_name() -> None:
    import msgspec

    from kabinet_integration import mapping, settings

    doc = (Path(__file__).resolve().parents[3] / "docs" / "integration.md").read_text()
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in (settings.Settings, settings.Source)
        for f in msgspec.structs.fields(cls)
        if f"\n{f.name} = " not in doc and f"`{f.name}`" not in doc
    ]
    rows = [f"| `{e}` | `{s}` |" for e, s in mapping.SETS.items()]
    rows += [
        f"| `{e}` | `{f}` | `{n}` |" for e, fs in mapping.FIELDS.items() for f, n in fs.items()
    ]
    rows += [
        f"| `{e}` | `{f}` | " + ", ".join(f"`{k}` → `{v}`" for k, v in vs.items()) + " |"
        for e, fs in mapping.VALUES.items()
        for f, vs in fs.items()
    ]
    missing += [row for row in rows if row not in doc]
    assert missing == [], "docs/integration.md lacks (regenerate its tables): " + "; ".join(missing)
