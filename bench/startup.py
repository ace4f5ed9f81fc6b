"""bench/startup: process start to ready-to-serve, and resident memory, against a bare app.

Runs ``kabinet serve`` (all installed apps enabled) on a free port against a fresh,
migrated SQLite database and polls ``/health`` until it answers; then does the same with
a bare Litestar app with one route served by uvicorn in the same way, in the same run.
After the last start of each it sends a few hundred requests and reads the process's
resident memory (RSS, psutil). Then it shows where the portal's start-up goes: the CPU
of each phase (imports, building the host, assembling the app, start-up hooks) and the
imports the bare app does not make, heaviest first.

Both run from compiled bytecode, as a deployed portal does (pip compiles what it
installs): the project's own sources are compiled first (``compileall``), since with
``PYTHONDONTWRITEBYTECODE`` set, or a read-only checkout, every start would compile some
200 modules again (about 0.6 s of CPU). Targets (issue 19.3): CPU to ready <= 1.5x the
bare app's in the same run; RSS <= 150 MB.

    .venv/bin/python bench/startup.py [--runs 7] [--requests 300] [--top 15]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
CPU_RATIO_TARGET = 1.5
ROOT = Path(__file__).resolve().parent.parent
RSS_TARGET_MB = 150.0

BARE_APP = """
import sys
import uvicorn
from litestar import Litestar, get

@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}

uvicorn.run(Litestar([health]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

# The stack's floor: the bare app plus the libraries any portal on the chosen stack
# imports before it can serve (the ORM with its asyncio driver, templates, the log, the
# plugin manager, the settings' and texts' libraries, the keys' cryptography), with the
# collector paused as ``kabinet`` does. What the portal spends above it is its own.
FLOOR_APP = (
    "import gc\ngc.disable()\n"
    "import sqlalchemy.orm, sqlalchemy.ext.asyncio, aiosqlite, jinja2, structlog, pluggy\n"
    "import msgspec, babel, click, cryptography.hazmat.primitives.kdf.hkdf\n"
    "gc.enable()\n" + BARE_APP
)


PHASES = """
import asyncio, sys, time
from kabinet import warmup
warmup.pause()  # as the kabinet command does
marks = [("interpreter and site", time.process_time())]
import kabinet.cli, kabinet.host, kabinet.web, uvicorn
marks.append(("imports: kabinet.cli, host, web, uvicorn", time.process_time()))
async def main():
    host = await kabinet.host.Host.create(sys.argv[1])
    marks.append(("Host.create: settings, plugins, their hooks", time.process_time()))
    app = await kabinet.web.build_app(host)
    marks.append(("build_app: routers and the Litestar app", time.process_time()))
    await host.startup()
    marks.append(("startup hooks", time.process_time()))
    await host.shutdown()
asyncio.run(main())
before = 0.0
for name, at in marks:
    print(f"{at - before:.3f} {name}")
    before = at
"""


def compile_sources() -> None:
    """Compile the project's sources, as installing a wheel would (see the docstring)."""
    import compileall

    folders = [ROOT / "host" / "kabinet", *sorted((ROOT / "plugins").glob("*/kabinet_*"))]
    for folder in folders:
        compileall.compile_dir(folder, quiet=2, workers=1)


def phases(settings: Path, env: dict[str, str]) -> list[tuple[float, str]]:
    """CPU seconds of each phase of one start, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", PHASES, str(settings)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [(float(line.split(" ", 1)[0]), line.split(" ", 1)[1]) for line in out.splitlines()]


def import_times(code: list[str], env: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """``-X importtime`` of ``python code``: module -> (self us, cumulative us, depth)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", *code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    found = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = line.split(":", 1)[1].split("|")
        found[name.strip()] = (int(own), int(total), (len(name) - len(name.lstrip())) // 2)
    return found


def heaviest_imports(
    settings: Path, env: dict[str, str], top: int
) -> tuple[list[tuple[float, str]], float]:
    """The portal's imports the bare app does not make, summed by package (their modules'
    own time; our apps by module, ``kabinet_dictionaries.documents``), heaviest first; and
    the total (seconds). ``-X importtime`` inflates each a little."""
    built = BARE_APP.replace("uvicorn.run(", "(lambda app, **_: app)(")  # built, not served
    bare = import_times(["-c", built, "0"], env)
    portal = import_times(["-c", PHASES, str(settings)], env)
    extra = {name: v for name, v in portal.items() if name not in bare}
    by_package: dict[str, int] = {}
    for name, (own, _total, _depth) in extra.items():
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0].startswith("kabinet") else parts[0]
        by_package[key] = by_package.get(key, 0) + own
    ranked = sorted(((us / 1e6, name) for name, us in by_package.items()), reverse=True)[:top]
    return ranked, sum(v[0] for v in extra.values()) / 1e6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextmanager
def started(argv: list[str], port: int, env: dict[str, str]) -> Iterator[tuple[float, float, int]]:
    """Start ``argv``; yield (wall and CPU seconds until /health answered 200, pid)."""
    begin = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise SystemExit(f"{argv[0]} exited with {proc.returncode}:\n{err[-3000:]}")
            try:
                if get(port, "/health") == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - begin > 60:
                raise SystemExit(f"{argv} did not answer /health within 60 s")
            time.sleep(0.005)
        wall = time.perf_counter() - begin
        cpu = psutil.Process(proc.pid).cpu_times()
        yield wall, cpu.user + cpu.system, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    total += sum(child.memory_info().rss for child in proc.children(recursive=True))
    return total / 2**20


def measure(
    argv: list[str], env: dict[str, str], runs: int, requests: int, paths: list[str]
) -> dict[str, float]:
    """Start ``argv + [port]`` ``runs`` times; RSS of the last after ``requests`` requests."""
    times = []
    cpus = []
    rss = 0.0
    for i in range(runs):
        port = free_port()
        with started([*argv, str(port)], port, env) as (seconds, cpu, pid):
            times.append(seconds)
            cpus.append(cpu)
            if i == runs - 1:
                for n in range(requests):
                    get(port, paths[n % len(paths)])
                rss = rss_mb(pid)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "cpu": statistics.median(cpus),
        "rss": rss,
    }


def kabinet_argv(settings: Path) -> list[str]:
    return [str(BIN / "kabinet"), "--settings", str(settings), "serve", "--port"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="starts of each app (default 7)")
    parser.add_argument("--requests", type=int, default=300, help="requests before RSS")
    parser.add_argument("--top", type=int, default=15, help="imports to list (default 15)")
    args = parser.parse_args()
    compile_sources()

    with tempfile.TemporaryDirectory(prefix="kabinet-bench-") as tmp:
        settings = Path(tmp) / "settings.toml"
        settings.write_text(
            f'[host]\ndatabase_url = "sqlite+aiosqlite:///{Path(tmp) / "bench.sqlite3"}"\n'
            f'var_dir = "{Path(tmp) / "var"}"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET")}
        subprocess.run(
            [str(BIN / "kabinet"), "--settings", str(settings), "db", "upgrade"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        plugins = subprocess.run(
            [str(BIN / "kabinet"), "--settings", str(settings), "plugins"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.splitlines()[1:]
        enabled = [line.split()[0] for line in plugins if line.split()[2] == "yes"]

        bare = measure(
            [sys.executable, "-c", BARE_APP],
            env,
            args.runs,
            args.requests,
            ["/health"],
        )
        floor = measure(
            [sys.executable, "-c", FLOOR_APP],
            env,
            args.runs,
            args.requests,
            ["/health"],
        )
        kabinet = measure(
            kabinet_argv(settings),
            env,
            args.runs,
            args.requests,
            ["/health", "/ready", "/"],
        )
        where = phases(settings, env)
        heavy, extra_imports = heaviest_imports(settings, env, args.top)

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(f"load average (1, 5, 15 min) at the end: {load}")
    print(f"plugins enabled: {', '.join(enabled)} ({len(enabled)})")
    print(f"runs: {args.runs} starts each; RSS after {args.requests} requests on the last one")
    print()
    print(f"{'app':<10} {'start median':>13} {'min':>7} {'max':>7} {'CPU':>7} {'RSS':>9}")
    for name, row in (("bare", bare), ("floor", floor), ("kabinet", kabinet)):
        print(
            f"{name:<10} {row['median']:>12.2f}s {row['min']:>6.2f}s {row['max']:>6.2f}s "
            f"{row['cpu']:>6.2f}s {row['rss']:>7.1f}MB"
        )
    print("(start: wall clock from spawn to the first 200 from /health; CPU: the process's")
    print(" user+system seconds by then, which other load on the machine inflates less;")
    print(" floor: the bare app importing the stack's libraries, see FLOOR_APP)")
    print()
    print("where the portal's start-up goes (CPU seconds, one start, from compiled bytecode):")
    for seconds, name in where:
        print(f"  {seconds:6.3f}  {name}")
    print(f"  {sum(t for t, _ in where):6.3f}  in all (uvicorn's own start-up not included)")
    print(f"imports the bare app does not make: {extra_imports:.3f} s in all; by package:")
    for seconds, name in heavy:
        print(f"  {seconds:6.3f}  {name}")
    print()
    ratio = kabinet["cpu"] / bare["cpu"]
    ok_start = ratio <= CPU_RATIO_TARGET
    ok_rss = kabinet["rss"] <= RSS_TARGET_MB
    print(
        f"start: CPU {kabinet['cpu']:.2f} s = {ratio:.2f}x the bare app's {bare['cpu']:.2f} s "
        f"(target <= {CPU_RATIO_TARGET}x; wall {kabinet['median']:.2f} s, "
        f"{kabinet['median'] - bare['median']:+.2f} s over bare): {'ok' if ok_start else 'MISSED'}"
    )
    print(
        f"the stack's floor: CPU {floor['cpu']:.2f} s = {floor['cpu'] / bare['cpu']:.2f}x the "
        f"bare app's; the portal's own work {kabinet['cpu'] - floor['cpu']:.2f} s, "
        f"{kabinet['cpu'] / floor['cpu']:.2f}x the floor"
    )
    print(
        f"RSS: {kabinet['rss']:.1f} MB (target <= {RSS_TARGET_MB:.0f} MB, "
        f"{kabinet['rss'] - bare['rss']:+.1f} MB over bare): {'ok' if ok_rss else 'MISSED'}"
    )
    sys.exit(0 if ok_start and ok_rss else 1)


if __name__ == "__main__":
    main()
