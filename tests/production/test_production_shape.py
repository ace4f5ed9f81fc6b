"""The documented production shape, as real processes with faults (issue 19.1).

Two ``kabinet serve``, two ``kabinet worker`` and two ``kabinet scheduler`` run on one
fresh PostgreSQL database and one Redis database of their own, with the local 1C
(``kabinet_integration_testing``) as the production system and a probe plugin
(``prodshape_probe``: a one-second schedule, a job that can be held, a request that can
be held) loaded by every process. The processes start once for the module; a test that
stops or kills one starts it again. Nothing here waits for time to pass: every wait polls
the processes' progress, with generous bounds for a loaded machine.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shape_support import (
    PASSWORD,
    ROLES,
    Shape,
    browser,
    csrf,
    environment,
    free_redis_db,
    sign_in,
    signed_in,
    wait_for,
    write_probe_site,
)

from kabinet.clock import FrozenClock
from kabinet.testing import backend, drop_database, migrated_database, start_portal
from kabinet_integration_testing import OneCData, OneCServer, generate

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(
        backend() == "sqlite",
        reason="the production shape is PostgreSQL and Redis: several processes on one "
        "SQLite file is no supported installation",
    ),
]


@pytest.fixture(scope="module")
def onec() -> Iterator[OneCServer]:
    """The local 1C (a real HTTP server in this process) with generated orders."""
    data = OneCData()
    generate(data)
    with OneCServer(data) as server:
        yield server


@pytest.fixture(scope="module")
async def shape(tmp_path_factory: pytest.TempPathFactory, onec: OneCServer) -> AsyncIterator[Shape]:
    folder = tmp_path_factory.mktemp("shape")
    url = await migrated_database(folder)
    redis_url = f"redis://127.0.0.1:6379/{free_redis_db()}"
    site = folder / "site"
    write_probe_site(site)
    settings = folder / "settings.toml"
    shape = Shape(folder, settings, {})
    shape.database_url = url
    shape.redis_url = redis_url
    shape.onec = onec
    settings.write_text(
        f"""
[host]
database_url = "{url}"
redis_url = "{redis_url}"
secret_key = "production-shape-{uuid.uuid4().hex}"
var_dir = "{folder / "var"}"
base_url = "{shape.url("web1")}"

[identity]
login_failures_per_account = 5

[integration]
interval_minutes = 1440

[integration.sources.onec]
base_url = "{onec.base_url}"
username = "portal"
password = "пароль"
page_size = 50
timeout_seconds = 60
"""
        # A sender that died holding a client request lets it go after 10 s (longer than
        # a send to the local 1C takes).
        .replace("[integration]\n", "[integration]\noutbound_claim_seconds = 10\n")
    )
    shape.env = environment(folder, settings, site)
    try:
        for role in ROLES:
            shape.start(role)
        shape.people = await make_people(folder, url, redis_url)  # while they start
        shape.wait_ready(*ROLES)
        yield shape
    finally:
        shape.stop_all()
        await drop_database(url)
        import redis

        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()


async def make_people(folder: Path, url: str, redis_url: str) -> dict[str, tuple[int, str]]:
    """Accounts for the tests, by name: (id, e-mail), with the password ``PASSWORD``."""
    portal = await start_portal(
        folder / "maker",
        url,
        clock=FrozenClock(),
        settings={"host": {"redis_url": redis_url}},
    )
    people: dict[str, tuple[int, str]] = {}
    try:
        for name, roles in (
            ("admin", ("admin",)),
            ("plain", ()),
            ("roaming", ()),
            ("guessed", ()),
            ("almost", ()),
        ):
            person = await portal.person(*roles, password=PASSWORD)
            people[name] = (person.id, person.email)
    finally:
        await portal.aclose()
    return people


def person(shape: Shape, name: str) -> tuple[int, str]:
    return shape.people[name]


# --- sessions, grants and rate limits across the two web processes ---------------------------


def test_a_session_started_on_one_web_process_is_honoured_and_ended_on_the_other(
    shape: Shape,
) -> None:
    web1, web2 = shape.url("web1"), shape.url("web2")
    _id, email = person(shape, "roaming")
    with browser(shape) as one:
        answer = sign_in(one, web1, email)
        assert answer.status_code in (302, 303), answer.text[:500]
        assert signed_in(one, web1)
        assert signed_in(one, web2)  # the same cookie, the other process
        copy = httpx.Client(timeout=30, cookies=dict(one.cookies))  # the session stolen
        with copy:
            assert signed_in(copy, web1)
            token = csrf(one, f"{web2}/identity/profile")
            out = one.post(f"{web2}/logout", data={"csrf_token": token})
            assert out.status_code in (302, 303)
            # Ended everywhere at once: the copied cookie opens nothing on either process.
            assert not signed_in(copy, web1)
            assert not signed_in(copy, web2)


def test_a_grant_and_a_revocation_through_one_process_are_in_force_on_the_other(
    shape: Shape,
) -> None:
    web1, web2 = shape.url("web1"), shape.url("web2")
    plain_id, plain_email = person(shape, "plain")
    _admin_id, admin_email = person(shape, "admin")
    with browser(shape) as admin, browser(shape) as plain:
        assert sign_in(admin, web1, admin_email).status_code in (302, 303)
        assert sign_in(plain, web2, plain_email).status_code in (302, 303)
        assert plain.get(f"{web2}/roles/").status_code == 403
        card = f"{web1}/roles/people/{plain_id}"
        given = admin.post(
            f"{card}/grants",
            data={"role": "admin", "organization": "", "csrf_token": csrf(admin, card)},
        )
        assert given.status_code in (302, 303), given.text[:500]
        wait_for(
            lambda: plain.get(f"{web2}/roles/").status_code == 200,
            "the grant made on web 1 to open /roles/ on web 2",
            timeout=10,
        )
        page = admin.get(card).text
        grant = re.search(rf"/roles/people/{plain_id}/grants/(\d+)/revoke", page)
        assert grant, page[:2000]
        revoked = admin.post(
            f"{card}/grants/{grant.group(1)}/revoke", data={"csrf_token": csrf(admin, card)}
        )
        assert revoked.status_code in (302, 303), revoked.text[:500]
        wait_for(
            lambda: plain.get(f"{web2}/roles/").status_code == 403,
            "the revocation made on web 1 to close /roles/ on web 2",
            timeout=10,
        )


def test_sign_in_failures_count_across_both_web_processes(shape: Shape) -> None:
    web = [shape.url("web1"), shape.url("web2")]
    _id, guessed = person(shape, "guessed")
    _id2, almost = person(shape, "almost")
    for email, failures in ((almost, 4), (guessed, 5)):
        with browser(shape) as guesser:
            for n in range(failures):
                wrong = sign_in(guesser, web[n % 2], email, "wrong password " + str(n))
                assert wrong.status_code not in (302, 303)
    # 4 failures, 2 on each process: under the limit of 5, the right password lets in.
    with browser(shape) as owner:
        assert sign_in(owner, web[1], almost).status_code in (302, 303)
    # 5 failures, 3 + 2: the limit is reached across the processes; the account is locked
    # on both, although neither process saw 5 itself.
    for base in web:
        with browser(shape) as owner:
            locked = sign_in(owner, base, guessed)
            assert locked.status_code not in (302, 303)
            assert locked.status_code == 429, locked.status_code
            assert not signed_in(owner, base)


# --- schedulers ------------------------------------------------------------------------------


def fired_ticks(shape: Shape) -> list[float]:
    """Every probe tick some scheduler fired (seconds since the epoch); none twice."""
    counted = collections.Counter(tick for _log, tick in shape.fired())
    twice = {t: n for t, n in counted.items() if n > 1}
    assert not twice, f"ticks fired by both schedulers: {twice}"
    return sorted(dt.datetime.fromisoformat(t).timestamp() for t in counted)


def test_each_tick_fires_once_across_two_schedulers_also_when_one_is_killed(
    shape: Shape,
) -> None:
    wait_for(lambda: len(shape.fired()) >= 5, "five ticks fired", 60)
    shape.signal("scheduler1", signal.SIGKILL)
    shape.wait_exit("scheduler1")
    killed_at = len(shape.fired())
    wait_for(lambda: len(shape.fired()) >= killed_at + 4, "four ticks fired by the survivor")
    shape.start("scheduler1")
    shape.wait_ready("scheduler1")
    # The restarted scheduler takes part again: it sees ticks, firing or skipping each.
    wait_for(
        lambda: re.search(r"^(fired|skipped) prodshape", shape.log("scheduler1"), re.M),
        "the restarted scheduler to see a tick",
    )
    again = len(shape.fired())
    wait_for(lambda: len(shape.fired()) >= again + 4, "four more ticks")
    for role in ("scheduler1", "scheduler2"):
        shape.signal(role, signal.SIGTERM)
    assert [shape.wait_exit(r) for r in ("scheduler1", "scheduler2")] == [0, 0]
    ticks = fired_ticks(shape)
    # No tick was lost either: one a second, every second. A tick the killed scheduler had
    # claimed but not confirmed was taken over by the other once its lease ended.
    gaps = [b - a for a, b in itertools.pairwise(ticks) if b - a != 1]
    assert gaps == [], f"ticks missing: {gaps}"
    # Each fired tick's job ran once, also a tick sent twice (by the killed scheduler and
    # by the one that took it over): the workers catch up, a last job marks the end.
    wait_for(lambda: len(shape.lines("tick")) >= len(ticks), "every fired tick's job to run")
    mark = f"ticks-{uuid.uuid4().hex[:6]}"
    send_work(shape, [mark], hold=False)
    wait_for(lambda: shape.lines("done", mark), "the marking job")
    assert len(shape.lines("tick")) == len(ticks)
    for role in ("scheduler1", "scheduler2"):
        shape.start(role)
    shape.wait_ready("scheduler1", "scheduler2")


# --- workers ---------------------------------------------------------------------------------


def run_script(shape: Shape, body: str, *args: str) -> None:
    """Run ``body`` (awaited, with ``host`` and ``args``) in a new process built from the
    shape's settings: what any process of the installation would send to Redis."""
    script = (
        "import asyncio, sys\n"
        "from kabinet.host import Host\n"
        "async def main(args):\n"
        "    host = await Host.create(None)\n"
        f"    {body}\n"
        "    await host.jobs.close()\n"
        "    await host.db.dispose()\n"
        "asyncio.run(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=shape.env,
        cwd=shape.folder,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def send_work(shape: Shape, keys: list[str], *, hold: bool) -> None:
    """Send ``prodshape.work`` for each key."""
    run_script(
        shape,
        "for key in args[1:]: await host.jobs.send('prodshape.work', key=key, "
        "hold=args[0] == 'hold')",
        "hold" if hold else "go",
        *keys,
    )


def test_a_job_of_a_killed_worker_runs_again_on_the_other_and_its_effect_happens_once(
    shape: Shape,
) -> None:
    key = f"kill-{uuid.uuid4().hex[:6]}"
    send_work(shape, [key], hold=True)
    start = wait_for(lambda: shape.lines("start", key), "the held job to start")
    pid = int(start[0][2])
    victim = shape.worker_pids()[pid]
    other = "worker2" if victim == "worker1" else "worker1"
    shape.signal(victim, signal.SIGKILL)
    shape.wait_exit(victim)
    shape.release(key)  # the job may go on now, wherever it runs
    # The other worker takes it once Redis no longer hears from the killed one.
    done = wait_for(lambda: shape.lines("done", key), "the job to run again elsewhere", 90)
    assert int(done[0][2]) == shape.procs[other].pid
    assert [int(w[2]) for w in shape.lines("start", key)] == [pid, shape.procs[other].pid]
    shape.start(victim)
    shape.wait_ready(victim)
    # Its effect happened once, and stays once (nothing else runs it again).
    send_work(shape, [f"{key}-after"], hold=False)
    wait_for(lambda: shape.lines("done", f"{key}-after"), "a later job")
    assert len(shape.lines("done", key)) == 1


def test_sigterm_on_a_worker_finishes_its_job_and_returns_what_it_had_taken(
    shape: Shape,
) -> None:
    key = f"term-{uuid.uuid4().hex[:6]}"
    send_work(shape, [key], hold=True)
    start = wait_for(lambda: shape.lines("start", key), "the held job to start")
    pid = int(start[0][2])
    victim = shape.worker_pids()[pid]
    # Quick jobs sent just before the stop: some are taken by the stopping worker.
    quick = [f"{key}-q{n}" for n in range(12)]
    send_work(shape, quick, hold=False)
    shape.signal(victim, signal.SIGTERM)
    wait_for(lambda: "stopping" in shape.log(victim), "the worker to begin its stop")
    assert shape.alive(victim), "the worker stopped without waiting for its job"
    shape.release(key)
    assert shape.wait_exit(victim) == 0, shape.log(victim)[-3000:]
    done = wait_for(lambda: shape.lines("done", key), "the held job to finish")
    assert [int(w[2]) for w in done] == [pid]  # finished where it ran, before the exit
    wait_for(lambda: all(shape.lines("done", q) for q in quick), "every quick job to run", 60)
    assert all(len(shape.lines("done", q)) == 1 for q in quick)
    shape.start(victim)
    shape.wait_ready(victim)


REQUESTS = "Document_ЗапросКлиента"
ORDERS = "Document_ЗаявкаНаПеревозку"


async def a_client_of_synced_orders(shape: Shape) -> tuple[str, str]:
    """A client whose organization holds every counterparty the local 1C has, once a sync
    has brought the orders in; returns (e-mail, portal id of an order open in 1C)."""
    from sqlalchemy import select, update

    from kabinet_companies.models import counterparty, organization
    from kabinet_shipments import models as sm

    portal = await start_portal(
        shape.folder / "client-maker",
        shape.database_url,
        clock=FrozenClock(),
        settings={"host": {"redis_url": shape.redis_url}},
    )
    try:
        async with portal.host.db.reader() as s:
            found = await s.execute(select(sm.order.c.external_id, sm.order.c.id))
            orders = {str(r[0]): int(r[1]) for r in found}
        if not orders:
            run_script(shape, "await host.jobs.send('integration.sync', source='onec')")
            for _ in range(900):
                async with portal.host.db.reader() as s:
                    found = await s.execute(select(sm.order.c.external_id, sm.order.c.id))
                    orders = {str(r[0]): int(r[1]) for r in found}
                if orders:
                    break
                await asyncio.sleep(0.2)  # polling the workers' sync
        assert orders, "no sync brought the orders in"
        now = portal.host.clock.now()
        async with portal.host.db.session() as s:
            org = (
                await s.execute(
                    organization.insert()
                    .values(name="ООО Клиент", search="", created_at=now, updated_at=now)
                    .returning(organization.c.id)
                )
            ).scalar_one()
            await s.execute(update(counterparty).values(organization_id=org))
        client = await portal.person("client", organization=int(org), password=PASSWORD)
    finally:
        await portal.aclose()
    data = shape.onec.data
    status = data.renaming.fields.get("Статус", "Статус")
    open_refs = [
        ref
        for ref in orders
        if (data.get(ORDERS, ref) or {}).get(status) in ("Оформлена", "ВРаботе")
    ]
    assert open_refs, "no order open in 1C"
    return client.email, str(orders[open_refs[0]])


def spy_on_faults(onec: OneCServer) -> list[int]:
    """The client ports of the requests that got a fault (the handler's peer)."""
    taken: list[int] = []
    original = onec._take_fault

    def spy(target: str) -> Any:
        fault = original(target)
        if fault is not None:
            handler = sys._getframe(1).f_locals["self"]
            taken.append(int(handler.client_address[1]))
        return fault

    onec._take_fault = spy  # type: ignore[method-assign]
    return taken


async def test_a_client_request_is_carried_to_1c_once_when_its_sender_is_killed(
    shape: Shape, onec: OneCServer
) -> None:
    email, order_id = await a_client_of_synced_orders(shape)
    before = len(onec.data.sets.get(onec.data.renaming.set(REQUESTS), {}))
    # 1C takes 6 s over the document: time to kill the worker sending it. 1C creates the
    # document all the same; the answer never reaches the portal.
    posted = spy_on_faults(onec)
    documents = onec.data.renaming.set(REQUESTS)
    onec.fault("slow", match=f"POST /{onec.publication}/odata/standard.odata/{documents}", delay=6)
    web1 = shape.url("web1")
    with browser(shape) as client:
        assert sign_in(client, web1, email).status_code in (302, 303)
        token = csrf(client, f"{web1}/identity/profile")
        asked = client.post(
            f"{web1}/api/shipments/orders/{order_id}/requests",
            json={"kind": "cancel", "comment": "Не нужна"},
            headers={"X-CSRF-Token": token},
        )
        assert asked.status_code == 201, asked.text[:1000]
        request_id = int(asked.json()["id"])
    victim = wait_for(lambda: posted and shape.worker_on_port(posted[0]), "the send to 1C", 90)
    shape.signal(victim, signal.SIGKILL)
    shape.wait_exit(victim)
    arrived = max(t for t, target in onec.arrivals if documents in target)
    assert time.monotonic() - arrived < 6, "killed too late: 1C had answered"
    # The job goes back to the queue, the other worker takes it once the claim lapsed,
    # finds the document the killed one made, and records it: one document in 1C.
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(shape.database_url)
    try:
        state = ""
        for _ in range(1200):
            async with engine.connect() as conn:
                state = str(
                    (
                        await conn.execute(
                            text(
                                "select o.state from integration_outbound o "
                                "join shipments_request r on r.portal_key = o.portal_id "
                                "where r.id = :id"
                            ),
                            {"id": request_id},
                        )
                    ).scalar_one_or_none()
                )
            if state == "sent":
                break
            await asyncio.sleep(0.1)  # polling the other worker
        assert state == "sent", state
    finally:
        await engine.dispose()
    assert len(onec.data.sets[documents]) == before + 1
    # The killed worker's POST made it; the worker that took the job over looked it up.
    posts = [t for method, t in onec.requests if method == "POST" and documents in t]
    assert len(posts) == 1, posts
    shape.start(victim)
    shape.wait_ready(victim)


# --- the 1C sync ----------------------------------------------------------------------------


async def test_a_sync_run_never_runs_twice_at_once(shape: Shape, onec: OneCServer) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(shape.database_url)

    async def runs() -> list[tuple[int, str]]:
        async with engine.connect() as conn:
            found = await conn.execute(text("select id, state from integration_run order by id"))
            return [(int(r[0]), str(r[1])) for r in found]

    try:
        before = await runs()
        # The run's first request to 1C is answered late: the run holds the source's lock
        # while the second trigger, sent at the same moment, reaches the other worker.
        onec.fault("slow", delay=15)
        run_script(
            shape,
            "await host.jobs.send_many([('integration.sync', {'source': 'onec'})] * 2)",
        )
        skipped = "a run of onec is going on; this tick is skipped"
        wait_for(
            lambda: any(skipped in shape.log(w) for w in ("worker1", "worker2")),
            "the second trigger to be refused",
            90,
        )
        # One run was made of the two triggers; it ends, and never had a twin.
        for _ in range(900):
            after = (await runs())[len(before) :]
            if after and all(state != "running" for _id, state in after):
                break
            await asyncio.sleep(0.1)  # polling the workers' progress
        assert [state for _id, state in after] == ["succeeded"], after
    finally:
        await engine.dispose()


# --- SIGTERM on a web process -----------------------------------------------------------------


def test_sigterm_on_a_web_process_finishes_requests_in_flight_and_refuses_new_ones(
    shape: Shape,
) -> None:
    web2 = shape.url("web2")
    key = f"slow-{uuid.uuid4().hex[:6]}"
    answers: list[httpx.Response | BaseException] = []

    def ask() -> None:
        try:
            answers.append(httpx.get(f"{web2}/prodshape/slow", params={"key": key}, timeout=120))
        except BaseException as exc:
            answers.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    wait_for(lambda: shape.lines("slow-start", key), "the slow request to arrive")
    shape.signal("web2", signal.SIGTERM)

    def refused() -> bool:
        try:
            httpx.get(f"{web2}/health", timeout=2)
        except httpx.TransportError:
            return True
        return False

    wait_for(refused, "web 2 to refuse new connections", 30)
    assert shape.alive("web2"), "web 2 exited with a request in flight"
    assert not answers
    shape.release(key)
    asker.join(timeout=60)
    assert len(answers) == 1
    answer = answers[0]
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code == 200
    assert answer.text == f"finished {key}"
    # uvicorn ends by raising the signal it caught again, once it has shut down cleanly.
    assert shape.wait_exit("web2") in (0, -signal.SIGTERM), shape.log("web2")[-3000:]
    assert "Traceback" not in shape.log("web2")
    # The other process serves on (its /ready once said 503 on a loaded machine); web 2 back.
    assert httpx.get(f"{shape.url('web1')}/health", timeout=10).status_code == 200
    shape.wait_ready("web1", timeout=30)
    shape.start("web2")
    shape.wait_ready("web2")
