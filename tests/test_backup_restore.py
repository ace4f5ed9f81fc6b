"""Backups (issue 19.4), following docs/operations.md "Backups" literally: a portal with
orders synced from the local 1C and their files is backed up with ``kabinet backup``,
restored with ``kabinet restore`` into a new database and a new files folder, ``kabinet db
upgrade`` and ``kabinet check`` pass, and the restored portal serves the same orders and
the same files to the same signed-in client (their session cookie still works)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from kabinet.testing import backend, create_empty_database, drop_database, migrated_database
from kabinet.testkit import Portal, start_portal, write_settings_file
from kabinet_companies.models import counterparty
from kabinet_companies.services import COMPANIES
from kabinet_integration.sync import integration
from kabinet_integration_testing import OneCData, OneCServer, generate
from kabinet_shipments import models as sm

KABINET = str(Path(sys.executable).parent / "kabinet")


@pytest.fixture
def onec() -> Iterator[OneCServer]:
    with OneCServer(OneCData()) as server:
        generate(server.data, orders=8)
        yield server


def _source(onec: OneCServer) -> dict[str, Any]:
    return {
        "sources": {
            "onec": {
                "base_url": onec.base_url,
                "username": "portal",
                "password": "пароль",
                "rate_per_second": 0,
                "timeout_seconds": 5,
                "files_first_load": "ahead",
            }
        }
    }


async def kabinet(settings: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``kabinet --settings SETTINGS ARGS`` as an operator types it (no KABINET__ overrides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET")}
    return await asyncio.to_thread(
        subprocess.run,  # the venv's kabinet, the test's arguments
        [KABINET, "--settings", str(settings), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
async def databases(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    original = await migrated_database(tmp_path)
    fresh = await create_empty_database(tmp_path)
    yield original, fresh
    await drop_database(original)
    await drop_database(fresh)


async def _seen(portal: Portal, cookie: dict[str, str], orders: list[int]) -> dict[str, Any]:
    """What the client sees: the order list as CSV, each order's page, each document."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app),
        base_url="http://127.0.0.1:8000",
        cookies=cookie,
    ) as client:
        listed = await client.get("/shipments/orders.csv")
        assert listed.status_code == 200
        seen: dict[str, Any] = {"csv": listed.text, "orders": {}, "files": {}}
        async with portal.host.db.reader() as s:
            documents = (
                await s.execute(
                    select(sm.document.c.order_id, sm.document.c.id)
                    .where(sm.document.c.order_id.in_(orders))
                    .order_by(sm.document.c.id)
                )
            ).all()
        for order_id in orders:
            card = await client.get(f"/shipments/orders/{order_id}")
            assert card.status_code == 200
            seen["orders"][order_id] = card.text.count("<tr")
        for order_id, document_id in documents:
            got = await client.get(f"/shipments/orders/{order_id}/documents/{document_id}")
            seen["files"][document_id] = (got.status_code, got.content)
    return seen


async def test_a_backup_restored_into_a_new_database_and_folder_serves_the_same(
    tmp_path: Path, databases: tuple[str, str], onec: OneCServer
) -> None:
    original_url, fresh_url = databases
    sections = {"integration": _source(onec)}
    portal = await start_portal(tmp_path / "a", original_url, settings=sections)
    try:
        run = await integration(portal.host).run("onec")
        assert run.state == "succeeded"
        for _ in range(3):  # the files the orders name, fetched from 1C by bulk jobs
            await portal.drain()
        org = portal.organization_id()
        await portal.host.services.of(COMPANIES).ensure_organization(org, "ООО Клиент")
        async with portal.host.db.session() as s:
            await s.execute(update(counterparty).values(organization_id=org))
            orders = list((await s.scalars(select(sm.order.c.id).order_by(sm.order.c.id))).all())
        assert len(orders) >= 8
        client = await portal.person("client", organization=org)
        cookie = {"kabinet_session": await portal.session(client)}
        before = await _seen(portal, cookie, orders)
        served = [body for status, body in before["files"].values() if status == 200 and body]
        assert served, "the orders' documents are served from the file storage"
        backup = tmp_path / "backup-1"
        made = await kabinet(portal.settings_path, "backup", str(backup))
        assert made.returncode == 0, made.stderr
        assert f"backed up the {backend()} database" in made.stdout
    finally:
        await portal.aclose()
    manifest = json.loads((backup / "backup.json").read_text())
    assert manifest["files"] >= len(served)
    assert manifest["revisions"]["shipments"]

    # the procedure: new settings naming a new database and a new folder, then restore
    var = tmp_path / "b" / "var"
    restored = write_settings_file(
        tmp_path / "b",
        {
            "host": {"database_url": fresh_url, "var_dir": str(var), "secret_key": "kabinet-tests"},
            **sections,
        },
    )
    assert not (var / "files").exists()
    done = await kabinet(restored, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    again = await kabinet(restored, "restore", str(backup))  # never over a portal's data
    assert again.returncode != 0
    assert "not empty" in again.stderr
    upgraded = await kabinet(restored, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    checked = await kabinet(restored, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    portal_b = await start_portal(
        tmp_path / "b2", fresh_url, settings={"host": {"var_dir": str(var)}, **sections}
    )
    try:
        async with portal_b.host.db.reader() as s:
            assert await s.scalar(select(func.count()).select_from(sm.order)) == len(orders)
        after = await _seen(portal_b, cookie, orders)  # the same session cookie
    finally:
        await portal_b.aclose()
    assert after == before


async def test_restore_refuses_what_is_not_a_backup(
    tmp_path: Path, databases: tuple[str, str]
) -> None:
    _original, fresh = databases
    settings = write_settings_file(
        tmp_path, {"host": {"database_url": fresh, "var_dir": str(tmp_path / "v")}}
    )
    (tmp_path / "nothing").mkdir()
    refused = await kabinet(settings, "restore", str(tmp_path / "nothing"))
    assert refused.returncode == 2
    assert "is not a Kabinet backup" in refused.stderr
