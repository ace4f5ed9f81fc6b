"""bench/startup: process start to ready-to-serve, and resident memory, against a bare app.

Runs ``kabinet serve`` (all installed apps enabled) on a free port against a fresh,
migrated SQLite database and polls ``/health`` until it answers; then does the same with
a bare Litestar app with one route served by uvicorn in the same way, in the same run.
After the last start of each it sends a few hundred requests and reads the process's
resident memory (RSS, psutil). Targets (issue 2): start <= 1.5 s, RSS <= 150 MB.

    .venv/bin/python bench/startup.py [--runs 7] [--requests 300]
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
START_TARGET_S = 1.5
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
    args = parser.parse_args()

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
        kabinet = measure(
            kabinet_argv(settings),
            env,
            args.runs,
            args.requests,
            ["/health", "/ready", "/"],
        )

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
    for name, row in (("bare", bare), ("kabinet", kabinet)):
        print(
            f"{name:<10} {row['median']:>12.2f}s {row['min']:>6.2f}s {row['max']:>6.2f}s "
            f"{row['cpu']:>6.2f}s {row['rss']:>7.1f}MB"
        )
    print("(start: wall clock from spawn to the first 200 from /health; CPU: the process's")
    print(" user+system seconds by then, which other load on the machine inflates less)")
    print()
    ok_start = kabinet["median"] <= START_TARGET_S
    ok_rss = kabinet["rss"] <= RSS_TARGET_MB
    print(
        f"start: {kabinet['median']:.2f} s (target <= {START_TARGET_S} s, "
        f"{kabinet['median'] - bare['median']:+.2f} s over bare): {'ok' if ok_start else 'MISSED'}"
    )
    print(
        f"RSS: {kabinet['rss']:.1f} MB (target <= {RSS_TARGET_MB:.0f} MB, "
        f"{kabinet['rss'] - bare['rss']:+.1f} MB over bare): {'ok' if ok_rss else 'MISSED'}"
    )
    sys.exit(0 if ok_start and ok_rss else 1)


if __name__ == "__main__":
    main()
