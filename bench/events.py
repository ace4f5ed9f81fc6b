"""Events from publish to subscriber through Redis and two `kabinet worker` processes.

    .venv/bin/python bench/events.py [--rate 500] [--seconds 10] [--burst 3000] [--publishers 2]

Needs PostgreSQL and Redis on localhost (as the tests do). In one run it measures:

- **events**: ``--publishers`` processes (web processes: each runs its relay, woken by
  its commits) publish one event per transaction, ``--rate`` per second between them;
  two ``kabinet worker`` processes deliver them to a subscriber that records its
  handling. The delay is from the publisher's commit to the subscriber's handled time
  (``host_event_handling``); then a burst of ``--burst`` events as fast as the
  publishers can commit them (8 concurrent transactions each); then a backlog of
  ``--backlog`` events committed 500 to a transaction, which shows what the relays and
  workers deliver per second when the publishers' commits are not the limit.
- **raw baseline**: a bare dramatiq actor on the same Redis, two ``dramatiq`` worker
  processes, the same rate and burst; the delay is from ``send`` to the actor running.

Figures go to docs/performance.md ("Events from publish to subscriber").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

REDIS = "redis://127.0.0.1:6379/11"
THREADS = os.environ.get("BENCH_THREADS", "8")
RAW_MODULE = """
import os, time
import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_REDIS"], namespace="bench_raw")
dramatiq.set_broker(broker)
sink = redis.Redis.from_url(os.environ["BENCH_REDIS"])

@dramatiq.actor(queue_name="raw", max_retries=0)
def ping(seq, sent):
    sink.rpush("bench_raw:done", f"{seq} {sent} {time.time()}")
"""

PLUGIN = """
@hookimpl
def event_types():
    return [EventType(name="benchevt.tick.sent")]

@hookimpl
def subscriptions(host):
    async def sink(event, session):
        return None  # the handling record is written in this transaction by the bus
    return [Subscription(event="benchevt.tick.sent", name="benchevt.sink", handler=sink)]
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(delays: list[float], span: float) -> dict[str, float]:
    return {
        "n": len(delays),
        "per_s": len(delays) / span if span > 0 else 0.0,
        "p50_ms": statistics.median(delays) * 1000,
        "p95_ms": percentile(delays, 0.95) * 1000,
        "max_ms": max(delays) * 1000,
    }


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


async def paced(n: int, rate: float, fn: Any) -> None:
    """Call ``fn(i)`` for i < n at ``rate`` per second (as tasks, so a slow one never delays)."""
    start = time.perf_counter()
    tasks = []
    for i in range(n):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fn(i)))
    await asyncio.gather(*tasks)


# --- the events path --------------------------------------------------------------------


async def publisher(settings: Path, n: int, rate: float, at: float) -> dict[int, float]:
    """One web process's share: ``n`` events at ``rate`` per second (0: as fast as 8
    concurrent transactions go) from wall-clock time ``at``, with this process's relay;
    returns each event's commit time."""
    from kabinet.host import Host
    from kabinet.jobs import start_embedded, stop_embedded

    host = await Host.create(settings)
    await start_embedded(host)  # this process's relay, as in a web process
    committed: dict[int, float] = {}

    # At most 8 transactions at once (a web process's share of the pool); a publisher
    # that falls behind its pace publishes fewer per second, which the output shows.
    gate = asyncio.Semaphore(8)

    async def publish(i: int) -> None:
        async with gate, host.db.session() as s:
            eid = await host.events.publish(s, "benchevt.tick.sent", {"seq": i})
        committed[eid] = time.time()

    try:
        async with host.db.session() as s:  # connect before the clock starts
            await s.execute(select(1))
        await asyncio.sleep(max(0.0, at - time.time()))
        if rate:
            await paced(n, rate, publish)
        else:
            await asyncio.gather(*(publish(i) for i in range(n)))
        await asyncio.sleep(1.0)  # the relay's last pass
    finally:
        await stop_embedded(host)
        await host.shutdown()
    return committed


async def bench_events(
    tmp: Path, rate: float, seconds: float, burst: int, publishers: int, backlog: int
) -> dict[str, dict[str, float]]:
    from kabinet import models
    from kabinet.host import Host
    from kabinet.testing import PluginFactory, drop_database, migrated_database

    factory = PluginFactory(tmp / "plugins")
    factory.add("benchevt", PLUGIN)
    sys.path.insert(0, str(factory.site))
    url = await migrated_database(tmp)
    settings = tmp / "settings.toml"
    settings.write_text(f'[host]\ndatabase_url = "{url}"\nredis_url = "{REDIS}"\n')
    env = {
        **os.environ,
        "KABINET_SETTINGS": str(settings),
        "PYTHONPATH": os.pathsep.join([str(factory.site), os.environ.get("PYTHONPATH", "")]),
    }
    exe = str(Path(sys.executable).with_name("kabinet"))
    workers = [
        spawn([exe, "worker", "--threads", THREADS], env, tmp / f"worker{n}.log") for n in (1, 2)
    ]
    host = await Host.create(settings)
    relayed_at: dict[int, float] = {}

    def publish_from(processes: int, n: int, rate: float, phase: str) -> dict[int, float]:
        """Run ``processes`` publishing processes sharing ``n`` events; their commit times."""
        at = time.time() + 4.0  # all start together, after their imports
        procs, outs = [], []
        for k in range(processes):
            out = tmp / f"{phase}{k}.json"
            outs.append(out)
            share = n // processes + (1 if k < n % processes else 0)
            cmd = [sys.executable, __file__, "--child", str(settings), str(out), str(share)]
            cmd += [str(rate / processes), str(at)]
            procs.append(spawn(cmd, env, tmp / f"{phase}{k}.log"))
        for proc, out in zip(procs, outs, strict=True):
            if proc.wait() != 0:
                raise SystemExit(f"publisher failed:\n{out.with_suffix('.log').read_text()}")
        return {int(k): v for out in outs for k, v in json.loads(out.read_text()).items()}

    async def wait_handled(ids: set[int]) -> dict[int, float]:
        h = models.event_handling
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with host.db.session() as s:
                done = (
                    await s.execute(
                        select(func.count()).where(
                            h.c.event_id.in_(ids), h.c.handled_at.is_not(None)
                        )
                    )
                ).scalar_one()
            if done >= len(ids):
                break
            await asyncio.sleep(0.2)
        e = models.event
        async with host.db.session() as s:
            rows = await s.execute(
                select(h.c.event_id, h.c.handled_at).where(h.c.event_id.in_(ids))
            )
            got = {eid: at.timestamp() for eid, at in rows if at}
            relayed = await s.execute(select(e.c.id, e.c.relayed_at).where(e.c.id.in_(ids)))
            relayed_at.update({eid: at.timestamp() for eid, at in relayed if at})
        return got

    def measure(committed: dict[int, float], handled: dict[int, float]) -> dict[str, float]:
        lost = set(committed) - set(handled)
        if lost:
            raise SystemExit(f"{len(lost)} events were not handled within 120 s")
        delays = [handled[e] - committed[e] for e in committed]
        return summary(delays, max(handled.values()) - min(committed.values()))

    try:
        # Warm up: the workers have started and connected when these come back.
        warm = await asyncio.to_thread(publish_from, 1, 20, 20.0, "warm")
        await wait_handled(set(warm))

        n = int(rate * seconds)
        committed = await asyncio.to_thread(publish_from, publishers, n, rate, "steady")
        steady = measure(committed, await wait_handled(set(committed)))
        to_relay = [relayed_at[e] - committed[e] for e in committed]
        steady["relay_p95_ms"] = percentile(to_relay, 0.95) * 1000
        handled = await wait_handled(set(committed))
        to_handle = [handled[e] - relayed_at[e] for e in committed]
        steady["deliver_p95_ms"] = percentile(to_handle, 0.95) * 1000
        steady["published_per_s"] = len(committed) / (
            max(committed.values()) - min(committed.values())
        )

        committed = await asyncio.to_thread(publish_from, publishers, burst, 0.0, "burst")
        bursts = measure(committed, await wait_handled(set(committed)))
        bursts["published_per_s"] = len(committed) / (
            max(committed.values()) - min(committed.values())
        )
        # Backlog: events committed 500 to a transaction, so the publishers' commits are
        # not the limit; what the relays and the two workers deliver per second.
        committed = {}
        for chunk in range(backlog // 500):
            async with host.db.session() as s:
                ids = [
                    await host.events.publish(s, "benchevt.tick.sent", {"seq": chunk * 500 + i})
                    for i in range(500)
                ]
            committed.update(dict.fromkeys(ids, time.time()))
        backlogs = measure(committed, await wait_handled(set(committed)))
    finally:
        await host.shutdown()
        stop(workers)
        await drop_database(url)
    return {"steady": steady, "burst": bursts, "backlog": backlogs}


# --- the raw dramatiq baseline ----------------------------------------------------------


def bench_raw(tmp: Path, rate: float, seconds: float, burst: int) -> dict[str, dict[str, float]]:
    (tmp / "bench_raw.py").write_text(textwrap.dedent(RAW_MODULE))
    env = {
        **os.environ,
        "BENCH_REDIS": REDIS,
        "PYTHONPATH": str(tmp),
        "dramatiq_worker_timeout": "100",  # the same idle poll as `kabinet worker`
    }
    sys.path.insert(0, str(tmp))
    os.environ["BENCH_REDIS"] = REDIS
    import bench_raw  # type: ignore[import-not-found]

    exe = str(Path(sys.executable).with_name("dramatiq"))
    workers = [
        spawn([exe, "bench_raw", "-p", "1", "-t", "8"], env, tmp / f"raw{n}.log") for n in (1, 2)
    ]
    sink = redis.Redis.from_url(REDIS)

    def run(n: int, pace: float | None) -> dict[str, float]:
        sink.delete("bench_raw:done")
        began = time.time()
        start = time.perf_counter()
        for i in range(n):
            if pace:
                delay = start + i / pace - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            bench_raw.ping.send(i, time.time())
        deadline = time.monotonic() + 120
        while sink.llen("bench_raw:done") < n and time.monotonic() < deadline:
            time.sleep(0.1)
        raw_rows: list[bytes] = sink.lrange("bench_raw:done", 0, -1)  # type: ignore[assignment]
        rows = [r.decode().split() for r in raw_rows]
        delays = [float(done) - float(sent) for _, sent, done in rows]
        end = max(float(done) for *_, done in rows)
        return summary(delays, end - began)

    try:
        run(20, 20)  # warm up
        steady = run(int(rate * seconds), rate)
        bursts = run(burst, None)
    finally:
        stop(workers)
        sink.close()
    return {"steady": steady, "burst": bursts}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        settings, out, n, rate, at = sys.argv[2:7]
        committed = asyncio.run(publisher(Path(settings), int(n), float(rate), float(at)))
        Path(out).write_text(json.dumps(committed))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=3000)
    parser.add_argument("--publishers", type=int, default=2, help="publishing processes")
    parser.add_argument("--backlog", type=int, default=5000, help="events, 500 a transaction")
    args = parser.parse_args()
    redis.Redis.from_url(REDIS).flushdb()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        raw = bench_raw(Path(tmp), args.rate, args.seconds, args.burst)
        events = asyncio.run(
            bench_events(
                Path(tmp), args.rate, args.seconds, args.burst, args.publishers, args.backlog
            )
        )
    print(
        f"load average: {load:.1f} before, {os.getloadavg()[0]:.1f} after, "
        f"on {os.cpu_count()} cores; {args.publishers} publishing processes"
    )
    print(f"{'path':<28}{'n':>7}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, res in (("raw dramatiq", raw), ("kabinet event", events)):
        for phase in ("steady", "burst", "backlog"):
            if phase not in res:
                continue
            r = res[phase]
            label = f"{name} {phase}" + (f" @{args.rate:.0f}/s" if phase == "steady" else "")
            print(
                f"{label:<28}{r['n']:>7.0f}{r['per_s']:>9.0f}{r['p50_ms']:>9.1f}"
                f"{r['p95_ms']:>9.1f}{r['max_ms']:>9.1f}"
            )
    ev = events["steady"]
    print(
        f"kabinet steady: published {ev['published_per_s']:.0f}/s, "
        f"p95 commit to relay {ev['relay_p95_ms']:.1f} ms, "
        f"relay to handled {ev['deliver_p95_ms']:.1f} ms"
    )
    print(json.dumps({"raw": raw, "events": events}))


if __name__ == "__main__":
    main()
