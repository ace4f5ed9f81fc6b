"""What the host costs per request: a small JSON route through the full host vs bare Litestar.

Both apps serve the same 4-field JSON body, each from one uvicorn worker on loopback,
running side by side in the same run; ``wrk`` (Debian: ``apt-get install wrk``) loads them
in turns (bare, host anonymous, host signed in; then again, ``--rounds`` times) so that
load from elsewhere on the machine falls on all of them. Printed: the median over rounds
of requests per second of each (``-c32``), the ratio, and the median latency at
concurrency 1 with what the host adds; exits 1 when a target is missed.

The host app is the real one (``kabinet.web.build_app``): every built-in plugin's
middleware (identity's session lookup included), the access guard, the error handlers,
the request-id and security-header wrapper and one JSON log line per request (written to
/dev/null). Two host runs: anonymous (no session cookie) to a ``public`` route, and
signed in (a session cookie) to a route guarded by a permission the person holds through a
role: the session lookup and the real access check on every request.

Usage: .venv/bin/python bench/overhead.py [--seconds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BODY = {"id": 42, "name": "ping", "ok": True, "items": [1, 2, 3]}
PATH = "/api/bench/ping"
SIGNED_PATH = "/api/bench/mine"
PERMISSION = "bench.ping.view"
METRICS_ENV = "KABINET_BENCH_METRICS_TOKEN"


# --- the two apps ---------------------------------------------------------------------------


def bare_app() -> Any:
    from litestar import Litestar, get

    @get(PATH, sync_to_thread=False)
    def ping() -> dict[str, Any]:
        return BODY

    return Litestar([ping], openapi_config=None)


def bench_plugin() -> Any:
    """A plugin module made on the fly: a manifest and the same route."""
    import types

    from litestar import get

    from kabinet.access import permission, public
    from kabinet.contrib import Manifest, Permission
    from kabinet.hookspecs import hookimpl

    module = types.ModuleType("kabinet_bench_plugin")

    @get(PATH, access=public, sync_to_thread=False)
    def ping() -> dict[str, Any]:
        return BODY

    @get(SIGNED_PATH, access=permission(PERMISSION, scope="global"), sync_to_thread=False)
    def mine() -> dict[str, Any]:
        return BODY

    @hookimpl
    def permissions() -> list[Permission]:
        return [Permission(code=PERMISSION, label={"ru": "bench", "en": "bench"}, scope="global")]

    @hookimpl
    def manifest() -> Manifest:
        return Manifest(name="bench", version="1.0", title={"ru": "bench", "en": "bench"})

    @hookimpl
    def routers(host: Any) -> list[Any]:
        return [ping, mine]

    module.manifest = manifest  # type: ignore[attr-defined]
    module.routers = routers  # type: ignore[attr-defined]
    module.permissions = permissions  # type: ignore[attr-defined]
    return module


def host_app(var: Path) -> Any:
    from kabinet.host import Host
    from kabinet.plugins import Candidate, builtin_candidates
    from kabinet.web import build_app

    env = {
        "KABINET__HOST__DATABASE_URL": f"sqlite+aiosqlite:///{var / 'bench.sqlite3'}",
        "KABINET__HOST__VAR_DIR": str(var),
        "KABINET__HOST__LOG_FORMAT": "json",
    }
    if os.environ.get(METRICS_ENV):  # --metrics: /metrics on, each request counted and timed
        env["KABINET__HOST__METRICS_TOKEN"] = os.environ[METRICS_ENV]
    plugin = bench_plugin()
    candidates = [
        *builtin_candidates(),
        Candidate(name="bench", entry_point="bench", load=lambda: plugin),
    ]

    async def build() -> Any:
        host = await Host.create(None, env=env, candidates=candidates)
        await host.migrations.upgrade()
        await host.startup()
        try:
            (var / "cookie.txt").write_text(await signed_in_person(host))
        finally:
            await host.shutdown()
        return await build_app(await Host.create(None, env=env, candidates=candidates))

    return asyncio.run(build())


async def signed_in_person(host: Any) -> str:
    """A person holding the route's permission through a role; returns their Cookie header."""
    from kabinet.identity.sessions import SessionRecord, new_token

    identity, roles = host.services["identity"], host.services["roles"]
    account = await identity.create_account(full_name="Bench", email="bench@example.test")
    await roles.create_role(
        code="bench", name_ru="bench", name_en="bench", permissions=[PERMISSION]
    )
    await roles.grant(account.id, "bench", None)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=account.id, created_at=now, last_seen_at=now)
    )
    return f"{identity.settings.cookie_name}={token}"


def serve(kind: str, port: int, var: Path) -> None:
    import uvicorn

    app = bare_app() if kind == "bare" else host_app(var)
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, log_config=None
    )


# --- the load ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 60 s")


def wrk(url: str, connections: int, seconds: int, cookie: str = "") -> tuple[float, float]:
    """Requests per second and median latency (ms) of a bounded ``wrk`` run."""
    headers = ["-H", f"Cookie: {cookie}"] if cookie else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *headers, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    value, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    median = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rps, median


class Server:
    """One app served by uvicorn in its own process on a free port."""

    def __init__(self, kind: str, var: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port), "--var", var],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.url(PATH), self.proc)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three, interleaved")
    parser.add_argument(
        "--metrics", action="store_true", help="the host with /metrics on (kabinet.metrics)"
    )
    parser.add_argument("--serve", choices=["bare", "host"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--var", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.var)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    var = Path(tempfile.mkdtemp(prefix="kabinet-bench-"))
    if args.metrics:
        os.environ[METRICS_ENV] = "bench-metrics-token"  # the host server inherits it
    servers: list[Server] = []
    try:
        bare = Server("bare", var)
        servers.append(bare)
        host = Server("host", var)
        servers.append(host)
        cookie = (var / "cookie.txt").read_text()
        import httpx

        answer = httpx.get(host.url(SIGNED_PATH), headers={"Cookie": cookie}, timeout=5)
        if answer.status_code != 200:
            raise SystemExit(f"signed-in route answered {answer.status_code}")
        if args.metrics:
            scrape = httpx.get(
                host.url("/metrics"), headers={"Authorization": "Bearer bench-metrics-token"}
            )
            if scrape.status_code != 200 or "kabinet_http_requests_total" not in scrape.text:
                raise SystemExit(f"/metrics answered {scrape.status_code}")
            print("metrics: on (/metrics answers; every request counted and timed)")
        runs = {
            "bare": (bare.url(PATH), ""),
            "anonymous": (host.url(PATH), ""),
            "signed in": (host.url(SIGNED_PATH), cookie),
        }
        for url, c in runs.values():
            wrk(url, 8, 1, c)  # warm up
        rps: dict[str, list[float]] = {k: [] for k in runs}
        ms: dict[str, list[float]] = {k: [] for k in runs}
        # The three take turns, round after round, so that a burst of load from elsewhere
        # on the machine falls on all of them rather than on one; the medians are printed.
        for _ in range(args.rounds):
            for kind, (url, c) in runs.items():
                rps[kind].append(wrk(url, 32, args.seconds, c)[0])
            for kind, (url, c) in runs.items():
                ms[kind].append(wrk(url, 1, args.seconds, c)[1])
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(var, ignore_errors=True)
    bare_rps, bare_ms = median(rps["bare"]), median(ms["bare"])
    print(f"bare Litestar        : {bare_rps:9.0f} req/s   median at c=1: {bare_ms:.3f} ms")
    missed = False
    names = {"anonymous": "full host, anonymous", "signed in": "full host, signed in"}
    for kind, name in names.items():
        r, m = median(rps[kind]), median(ms[kind])
        ratio, added = r / bare_rps, m - bare_ms
        missed |= ratio < 0.4 or added > 0.3
        print(f"{name} : {r:9.0f} req/s   median at c=1: {m:.3f} ms")
        print(
            f"  ratio {ratio:.2f}x (target >= 0.40x), adds {added:.3f} ms "
            "per request at c=1 (target <= 0.3 ms)"
        )
    print(
        "rounds (req/s): "
        + "; ".join(f"{k} {', '.join(f'{v:.0f}' for v in vs)}" for k, vs in rps.items())
    )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    sys.stdout.flush()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
