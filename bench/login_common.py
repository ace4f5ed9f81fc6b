"""Shared by bench/login.py and bench/login_under_attack.py: a portal with accounts.

Prepares a temporary SQLite portal (migrated, with ``accounts`` people sharing one
password hash, inserted in bulk so that setting up does not take minutes of argon2),
serves it with ``kabinet serve`` on a free loopback port, and signs in over HTTP the way
a browser does (CSRF cookie and form field).
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
PASSWORD = "bench password 1"  # noqa: S105 - the benchmark accounts' password


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def machine() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f}"


def email(i: int) -> str:
    return f"bench{i}@bench.example"


async def _prepare(settings: Path, accounts: int) -> None:
    from sqlalchemy import insert

    from kabinet.host import Host
    from kabinet.identity.models import Account
    from kabinet.identity.services import IdentityService

    host = await Host.create(settings, env={})
    try:
        await host.migrations.upgrade()
        service = IdentityService(host)
        hashed = service.hasher.hash_sync(PASSWORD)
        service.hasher.close()
        now = host.clock.now()
        rows = [
            {
                "full_name": f"Bench {i}",
                "email": email(i),
                "password_hash": hashed,
                "status": "active",
                "email_confirmed": True,
                "phone_confirmed": False,
                "language": "en",
                "timezone": "UTC",
                "version": 1,
                "created_at": now,
            }
            for i in range(accounts)
        ]
        async with host.db.session() as s:
            await s.execute(insert(Account), rows)
    finally:
        await host.db.dispose()


def apps_off() -> str:
    """Settings disabling the installed apps: the bench needs the host's built-ins only."""
    from kabinet.plugins import entry_point_candidates

    names = sorted({c.name for c in entry_point_candidates()})
    return "".join(f"[{name}]\nenabled = false\n" for name in names)


@contextmanager
def portal(accounts: int) -> Iterator[str]:
    """A served portal with ``accounts`` people; yields its base URL."""
    with tempfile.TemporaryDirectory(prefix="kabinet-bench-") as tmp:
        folder = Path(tmp)
        settings = folder / "settings.toml"
        settings.write_text(
            "[host]\n"
            f'database_url = "sqlite+aiosqlite:///{folder / "bench.sqlite3"}"\n'
            'var_dir = "var"\nsecret_key = "bench"\naccess_log = false\n'
            'log_level = "WARNING"\n'
            "[identity]\n"
            'trusted_proxies = ["127.0.0.1"]\n' + apps_off()
        )
        asyncio.run(_prepare(settings, accounts))
        port = free_port()
        env = {**os.environ, "KABINET_SETTINGS": str(settings)}
        log = (folder / "serve.log").open("wb")
        proc = subprocess.Popen(
            [str(BIN / "kabinet"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit((folder / "serve.log").read_text()[-3000:])
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the portal did not start within 60 s")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def csrf(client: httpx.Client) -> str:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.status_code
    return found.group(1)


def login(client: httpx.Client, token: str, who: str, password: str, address: str = "") -> int:
    headers = {"X-Forwarded-For": address} if address else {}
    answer = client.post(
        "/login",
        data={"login": who, "password": password, "next": "/", "csrf_token": token},
        headers=headers,
    )
    return answer.status_code


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:.1f} ms, "
        f"p95 {percentile(values, 95) * 1000:.1f} ms, n={len(values)}"
    )
