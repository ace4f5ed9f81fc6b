"""The runs page's outbound queue (client requests carried to 1C, with 1C's errors) and
its failing file fetches are scoped like the quarantine: a request belongs to the
organization of its counterparty (named in its fields, else its order's), a file to the
organization of the order's or invoice's counterparty; staff see those of the
organizations where they hold the right, records tied to none only holders of
``integration.runs.manage``; acting (retry, dismiss) on a record one cannot reach answers
404 like a record that does not exist.

Asked over HTTP as an attacker would: a manager of organization A asks for B's."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from scope_people import (
    get,
    global_holder,
    manager_of,
    org_with_counterparty,
    post,
    role,
)
from sqlalchemy import insert, select, update

from kabinet.host import Host
from kabinet_integration import files
from kabinet_integration import models as m
from kabinet_integration.services import OUTBOUND
from kabinet_integration.structs import OutboundRecord

pytestmark = pytest.mark.smoke


async def _applied(host: Host, entity: str, ref: str, counterparty: str) -> None:
    """An order or invoice the sync applied with this counterparty (integration_known)."""
    async with host.db.session() as s:
        await s.execute(
            insert(m.known).values(
                source="onec",
                entity=entity,
                ref=ref,
                version="v1",
                identity={"external_id": ref, "counterparty": counterparty},
                deleted=0,
            )
        )


async def _hand_over(host: Host, tag: str, **fields: Any) -> int:
    """A client request handed over as the apps do; 1C's error ``tag`` recorded on it."""
    portal_id = f"{tag}-{uuid.uuid4()}"
    async with host.db.session() as s:
        queued = await host.services.of(OUTBOUND).hand_over(
            s, OutboundRecord(portal_id=portal_id, reply_to="booking.request_answer", **fields)
        )
    assert queued
    async with host.db.session() as s:
        row = (
            await s.execute(select(m.outbound.c.id).where(m.outbound.c.portal_id == portal_id))
        ).one()
        await s.execute(
            update(m.outbound)
            .where(m.outbound.c.id == row.id)
            .values(state="failed", last_error=f"1C says {tag}")
        )
    return int(row.id)


async def _failing(host: Host, ref: str, tag: str) -> None:
    async with host.db.session() as s:
        await s.execute(
            update(m.file)
            .where(m.file.c.ref == ref)
            .values(state="failed", attempts=5, last_error=f"1C gave no file {tag}")
        )


async def _counterparties(host: Host, table: Any, key: Any) -> dict[Any, Any]:
    async with host.db.reader() as s:
        return dict(list(await s.execute(select(key, table.c.counterparty))))


async def test_a_manager_sees_only_the_requests_and_files_of_their_organizations(
    host: Host, web: httpx.AsyncClient
) -> None:
    org_a, cp_a = await org_with_counterparty(host)
    org_b, cp_b = await org_with_counterparty(host)
    order_b, invoice_a = f"ord-{uuid.uuid4()}", f"inv-{uuid.uuid4()}"
    await _applied(host, "order", order_b, cp_b)
    await _applied(host, "invoice", invoice_a, cp_a)

    # A's new order names its counterparty; B's edit names B's order; a cancellation of
    # an order the portal never applied is tied to no organization.
    req_a = await _hand_over(host, "tag-a", kind="new_order", fields={"counterparty": cp_a})
    req_b = await _hand_over(host, "tag-b", kind="edit", target=order_b, fields={})
    req_none = await _hand_over(host, "tag-none", kind="cancel", target=f"ord-{uuid.uuid4()}")
    tied = await _counterparties(host, m.outbound, m.outbound.c.id)
    assert tied == {req_a: cp_a, req_b: cp_b, req_none: None}

    # Files: noted after a run (file -> its owner) and asked for by a person (the event).
    await files.note_files(
        host, "onec", {"file-a": invoice_a, "file-b": order_b, "file-x": f"ord-{uuid.uuid4()}"}
    )
    async with host.db.session() as s:
        event = SimpleNamespace(
            payload=SimpleNamespace(
                file_ref="file-b2", key="shipments/documents/file-b2", order_external_id=order_b
            )
        )
        await files.on_document_requested(host, event, s)  # type: ignore[arg-type]
    tied_files = await _counterparties(host, m.file, m.file.c.ref)
    assert tied_files == {"file-a": cp_a, "file-b": cp_b, "file-b2": cp_b, "file-x": None}
    for ref, tag in (("file-a", "f-a"), ("file-b", "f-b"), ("file-b2", "f-b2"), ("file-x", "f-x")):
        await _failing(host, ref, tag)

    everything = ("tag-a", "tag-b", "tag-none", "f-a", "f-b", "f-b2", "f-x")

    def shown(page: httpx.Response) -> set[str]:
        assert page.status_code == 200, page.text
        return {t for t in everything if f"1C says {t}" in page.text or f"file {t}" in page.text}

    manager_a = await manager_of(host, org_a)
    page = await get(web, "/integration/runs", manager_a)
    assert shown(page) == {"tag-a", "f-a"}
    assert "tag-b-" not in page.text  # B's portal ids
    assert "file-b" not in page.text
    assert f"/integration/outbound/{req_a}/retry" not in page.text  # no manage: no button
    for source in ("onec", "sample", ""):  # the runs' filter does not widen the lists
        assert shown(await get(web, f"/integration/runs?source={source}", manager_a)) == {
            "tag-a",
            "f-a",
        }

    manager_b = await manager_of(host, org_b)
    assert shown(await get(web, "/integration/runs", manager_b)) == {"tag-b", "f-b", "f-b2"}

    # A global holder of the view right alone: every tied record, none of the untied ones.
    viewer = await global_holder(host, await role(host, "runs_viewer", ["integration.runs.view"]))
    assert shown(await get(web, "/integration/runs", viewer)) == {
        "tag-a",
        "tag-b",
        "f-a",
        "f-b",
        "f-b2",
    }

    # An admin: all of them, with the retry buttons.
    admin = await global_holder(host, "admin")
    page = await get(web, "/integration/runs", admin)
    assert shown(page) == set(everything)
    assert f"/integration/outbound/{req_none}/retry" in page.text


async def _attempts(host: Host, item: int) -> int:
    async with host.db.reader() as s:
        return int(
            await s.scalar(select(m.outbound.c.attempts).where(m.outbound.c.id == item)) or 0
        )


async def test_acting_on_another_organizations_record_answers_404(
    host: Host, web: httpx.AsyncClient
) -> None:
    """A manager holding integration.runs.manage in A (an assigned-only role) retries A's
    request and dismisses A's record; B's, by id, answer the HTML 404 page and stay as
    they were; an admin reaches every one, untied ones too."""
    org_a, cp_a = await org_with_counterparty(host)
    _org_b, cp_b = await org_with_counterparty(host)
    req_a = await _hand_over(host, "tag-a", kind="new_order", fields={"counterparty": cp_a})
    req_b = await _hand_over(host, "tag-b", kind="new_order", fields={"counterparty": cp_b})
    req_none = await _hand_over(host, "tag-none", kind="new_order", fields={})
    now = host.clock.now()
    records = {}
    async with host.db.session() as s:
        for name, cp in (("a", cp_a), ("b", cp_b), ("none", None)):
            ref = str(uuid.uuid4())
            records[name] = await s.scalar(
                insert(m.quarantine)
                .values(
                    source="onec",
                    entity="order",
                    ref=ref,
                    payload={"Ref_Key": ref},
                    reason=f"refused {name}",
                    state="open",
                    attempts=1,
                    counterparty=cp,
                    created_at=now,
                    updated_at=now,
                )
                .returning(m.quarantine.c.id)
            )
    code = await role(
        host,
        "runs_org_manager",
        ["integration.runs.view", "integration.runs.manage"],
        assigned_only=True,
    )
    manager_a = await manager_of(host, org_a, code)

    for path in (
        f"/integration/outbound/{req_b}/retry",
        f"/integration/outbound/{req_none}/retry",
        "/integration/outbound/999999999/retry",
        f"/integration/quarantine/{records['b']}/dismiss",
        f"/integration/quarantine/{records['b']}/retry",
        f"/integration/quarantine/{records['none']}/dismiss",
        f"/integration/quarantine/{records['a']}/erase",  # no such action
        "/integration/quarantine/999999999/dismiss",
    ):
        answer = await post(web, path, manager_a)
        assert answer.status_code == 404, (path, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "1C says" not in answer.text
        assert "refused" not in answer.text
    assert (await _attempts(host, req_b), await _attempts(host, req_none)) == (0, 0)
    async with host.db.reader() as s:
        states = dict(list(await s.execute(select(m.quarantine.c.id, m.quarantine.c.state))))
    assert set(states.values()) == {"open"}

    done = await post(web, f"/integration/outbound/{req_a}/retry", manager_a)
    assert done.status_code == 303, done.text
    assert await _attempts(host, req_a) == 1
    done = await post(web, f"/integration/quarantine/{records['a']}/dismiss", manager_a)
    assert done.status_code == 303, done.text

    admin = await global_holder(host, "admin")
    for path in (
        f"/integration/outbound/{req_b}/retry",
        f"/integration/outbound/{req_none}/retry",
        f"/integration/quarantine/{records['none']}/dismiss",
    ):
        assert (await post(web, path, admin)).status_code == 303, path
    assert (await _attempts(host, req_b), await _attempts(host, req_none)) == (1, 1)
    async with host.db.reader() as s:
        states = dict(list(await s.execute(select(m.quarantine.c.id, m.quarantine.c.state))))
    assert states == {records["a"]: "dismissed", records["b"]: "open", records["none"]: "dismissed"}
