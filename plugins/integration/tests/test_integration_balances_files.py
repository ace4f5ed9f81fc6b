"""Balances that heal and files that respect 1C (issue 15, points 3 and 4), against the
local 1C: a run that fails after committing pages leaves its contracts' balances owed
until a later run refreshes them; file fetches hold the source's limits across jobs and
workers, go in batches on their own queue behind client requests, and a file whose order
was deleted in 1C ends quietly."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from integration_support import wipe
from sqlalchemy import select

from kabinet.host import Host
from kabinet_integration.onec_server import Generated, OneCServer
from kabinet_integration.sync import integration
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke
HostFactory = Callable[..., Awaitable[Host]]
ORDERS = "Document_ЗаявкаНаПеревозку"


async def portal_balances(host: Host) -> dict[str, Decimal | None]:
    async with host.db.sessionmaker() as s:
        rows = await s.execute(select(sm.contract.c.external_id, sm.contract.c.balance))
        return {r.external_id: r.balance for r in rows}


def onec_balances(onec: OneCServer, generated: Generated) -> dict[str, Decimal]:
    """1C's own operational balances (a contract without a row owes nothing)."""
    return {c: Decimal(str(onec.data.balances.get(c, 0))) for c in generated.contracts}


def change_in_1c(onec: OneCServer, generated: Generated, round_: int) -> None:
    """Every contract's balance moves, and one order of each changes (as a posting does)."""
    data = onec.data
    for n, contract in enumerate(generated.contracts):
        data.balances[contract] = float(1000 * (n + 1) * (round_ + 7))
    for ref in generated.orders[: len(generated.contracts)]:
        obj = dict(data.get(ORDERS, ref) or {})
        obj["Комментарий"] = f"оплата {round_}"
        data.put(ORDERS, obj)
    data.tick()


@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("odata", {"status": 500, "match": "/Balance("}),
        ("odata", {"status": 401, "match": "/Balance("}),
        ("exchange", {"status": 500, "match": "changes/ack"}),
        ("exchange", {"status": 401, "match": "/Balance("}),
    ],
)
async def test_balances_owed_by_a_failed_run_are_refreshed_by_the_next_one(
    make_host: HostFactory,
    onec: OneCServer,
    generated: Generated,
    mode: str,
    fault: dict[str, object],
) -> None:
    host = await make_host(source=f'mode = "{mode}"\nfiles_ahead = false')
    try:
        svc = integration(host)
        assert (await svc.run("onec")).state == "succeeded"
        assert await portal_balances(host) == onec_balances(onec, generated)
        change_in_1c(onec, generated, 1)
        # Still failing after the run's own retries of a transient fault.
        onec.fault("status", times=100, **fault)  # type: ignore[arg-type]
        failed = await svc.run("onec")
        assert failed.state == "failed"
        onec.faults.clear()
        assert failed.counts.applied > 0  # its pages were committed
        assert await portal_balances(host) != onec_balances(onec, generated)
        # Nothing changes in 1C: the next run has no new change, yet it owes the balances.
        healed = await svc.run("onec")
        assert healed.state == "succeeded", healed.error
        assert await portal_balances(host) == onec_balances(onec, generated)
        # Owed no more: a further run asks 1C for no balance at all.
        onec.requests.clear()
        assert (await svc.run("onec")).state == "succeeded"
        assert not [t for _m, t in onec.requests if "/Balance(" in t]
    finally:
        await wipe(host)

