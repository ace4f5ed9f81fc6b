"""bench/login_under_attack: a signed-in page while failed sign-ins hammer the portal.

Measures the p95 of a plain authenticated page (``/identity/profile``) with no attack,
then while another process sends ``--rate`` failed sign-ins per second spread over 1,000
accounts and 100 client addresses (``X-Forwarded-For`` from a trusted loopback proxy), so
each is hashed and none reaches a lock-out; then again without attack. Target: attacked
p95 <= 1.3x the quiet p95 of the same run (a bounded hashing pool keeps the rest
responsive).

    .venv/bin/python bench/login_under_attack.py [--requests 300] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from login_common import PASSWORD, csrf, email, login, machine, percentile, portal, summary

ACCOUNTS = 1000
ADDRESSES = 100
TARGET_RATIO = 1.3


def attack(url: str, rate: float, seconds: float) -> None:
    """Failed sign-ins started at ``rate`` per second for ``seconds`` (a child process).

    Each is sent when due, without waiting for the previous answer, so a slow answer does
    not lower the rate.
    """
    asyncio.run(_attack(url, rate, seconds))


async def _attack(url: str, rate: float, seconds: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        page = await client.get("/login")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found
        token = found.group(1)
        statuses: list[int] = []

        async def one(n: int) -> None:
            answer = await client.post(
                "/login",
                data={
                    "login": email(n % ACCOUNTS),
                    "password": "wrong password!",
                    "next": "/",
                    "csrf_token": token,
                },
                headers={"X-Forwarded-For": f"10.77.0.{n % ADDRESSES + 1}"},
            )
            statuses.append(answer.status_code)

        start = time.monotonic()
        tasks = []
        n = 0
        while time.monotonic() - start < seconds:
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
            n += 1
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - start
        print(
            f"attacker: {n} failed sign-ins started in {seconds:.1f} s ({n / seconds:.1f}/s), "
            f"{statuses.count(400)} answered 400, {statuses.count(429)} refused (429), "
            f"all answered after {elapsed:.1f} s",
            flush=True,
        )


def page_times(client: httpx.Client, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get("/identity/profile")
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.status_code
        time.sleep(0.01)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--attacker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attacker:
        attack(args.attacker[0], float(args.attacker[1]), float(args.attacker[2]))
        return
    print(f"machine: {machine()}")
    with portal(accounts=ACCOUNTS) as url, httpx.Client(base_url=url, timeout=30) as client:
        token = csrf(client)
        assert login(client, token, email(0), PASSWORD) == 303
        page_times(client, 30)  # warm-up
        quiet = page_times(client, args.requests)
        # the attack lasts as long as the measurement (plus its own start)
        seconds = max(5.0, sum(quiet) + args.requests * 0.01 + 2)
        attacker = subprocess.Popen(
            [sys.executable, __file__, "--attacker", url, str(args.rate), str(seconds)]
        )
        time.sleep(1.5)
        attacked = page_times(client, args.requests)
        attacker.wait(seconds + 60)
        after = page_times(client, args.requests)
    print(f"quiet:          {summary(quiet)}")
    print(f"under attack:   {summary(attacked)}")
    print(f"quiet again:    {summary(after)}")
    baseline = max(percentile(quiet, 95), percentile(after, 95))
    ratio = percentile(attacked, 95) / baseline
    ok = ratio <= TARGET_RATIO
    print(
        f"p95 ratio attacked/quiet: {ratio:.2f}x (target <= {TARGET_RATIO}x): "
        f"{'met' if ok else 'MISSED'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
