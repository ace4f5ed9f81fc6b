"""bench/login: median and p95 of a successful sign-in over HTTP (target p95 <= 150 ms).

One account, one client on loopback, ``--count`` sign-ins one after another (each a
fresh session: argon2id verify, the session write, the login record and audit line).

    .venv/bin/python bench/login.py [--count 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from login_common import PASSWORD, csrf, email, login, machine, percentile, portal, summary

TARGET_P95_S = 0.150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with portal(accounts=10) as url, httpx.Client(base_url=url, timeout=10) as client:
        token = csrf(client)
        for _ in range(5):  # warm-up
            assert login(client, token, email(1), PASSWORD) == 303
        times = []
        for _ in range(args.count):
            started = time.perf_counter()
            status = login(client, token, email(1), PASSWORD)
            times.append(time.perf_counter() - started)
            assert status == 303, status
    print(f"successful sign-in: {summary(times)}")
    p95 = percentile(times, 95)
    ok = p95 <= TARGET_P95_S
    print(f"target p95 <= {TARGET_P95_S * 1000:.0f} ms: {'met' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
