"""The production shape as real processes: two ``kabinet serve``, two ``kabinet worker``,
two ``kabinet scheduler`` on one fresh PostgreSQL database and one Redis database of
their own, with the probe plugin (``prodshape_probe``) on their path, and what the
test reads of them (logs, the probe's lines)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from kabinet.testing import free_port

HERE = Path(__file__).resolve().parent
KABINET = str(Path(sys.executable).with_name("kabinet"))
PASSWORD = "correct horse battery"
CSRF_RE = r'name="csrf_token" value="([^"]+)"'
ROLES = ("web1", "web2", "worker1", "worker2", "scheduler1", "scheduler2")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll other processes' progress until ``predicate`` is truthy (bounded)."""
    end = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > end:
            pytest.fail(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.1)  # polling other processes, not waiting for time to pass


def free_redis_db() -> int:
    """A Redis database (1..15; 0 is the identity tests') that nothing uses now."""
    import random

    import redis

    numbers = list(range(1, 16))
    random.shuffle(numbers)
    for n in numbers:
        client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{n}")
        try:
            if client.dbsize() == 0:
                return n
        finally:
            client.close()
    return numbers[0]


def write_probe_site(site: Path) -> None:
    """An entry point naming the probe module, so every process's host loads it."""
    dist = site / "kabinet_prodshape_probe-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kabinet-prodshape-probe\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[kabinet.plugins]\nprodshape = prodshape_probe\n")


class Shape:
    """The processes, their logs and the probe's folder; each role can be restarted."""

    def __init__(self, folder: Path, settings: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.settings = settings
        self.env = env
        self.ports = {"web1": free_port(), "web2": free_port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, IO[bytes]] = {}
        self.starts: dict[str, int] = {}
        self.database_url = ""
        self.redis_url = ""
        self.onec: Any = None
        self.people: dict[str, tuple[int, str]] = {}
        """Accounts the tests use, by name: (id, e-mail)."""

    # -- processes --------------------------------------------------------------------------

    def command(self, role: str) -> list[str]:
        if role.startswith("web"):
            return [KABINET, "serve", "--port", str(self.ports[role])]
        if role.startswith("worker"):
            return [KABINET, "worker", "--threads", "4"]
        return [KABINET, "scheduler", "-v"]

    def log_path(self, role: str) -> Path:
        return self.folder / f"{role}.{self.starts.get(role, 0)}.log"

    def start(self, role: str) -> None:
        self.starts[role] = self.starts.get(role, 0) + 1
        log = self.log_path(role).open("wb")
        self.logs[role] = log
        self.procs[role] = subprocess.Popen(
            self.command(role),
            cwd=self.folder,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"

    def log(self, role: str) -> str:
        return self.log_path(role).read_text(errors="replace")

    def alive(self, role: str) -> bool:
        return self.procs[role].poll() is None

    def ready(self, role: str) -> bool:
        """Whether ``role`` has started serving (fails the test if it exited)."""
        proc = self.procs[role]
        if proc.poll() is not None:
            pytest.fail(f"{role} exited with {proc.returncode}:\n{self.log(role)[-3000:]}")
        if role.startswith("web"):
            try:
                return httpx.get(f"{self.url(role)}/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False
        return f"kabinet {role.rstrip('12')}:" in self.log(role)

    def wait_ready(self, *roles: str, timeout: float = 150.0) -> None:
        for role in roles:
            wait_for(lambda r=role: self.ready(r), f"{role} to start", timeout)

    def signal(self, role: str, sig: signal.Signals) -> None:
        self.procs[role].send_signal(sig)

    def wait_exit(self, role: str, timeout: float = 60.0) -> int:
        proc = self.procs[role]
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{role} did not stop within {timeout:g} s:\n{self.log(role)[-3000:]}")
        self.logs[role].close()
        return code

    def restart(self, role: str) -> None:
        if self.alive(role):
            self.signal(role, signal.SIGTERM)
            self.wait_exit(role)
        self.start(role)
        self.wait_ready(role)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for role, proc in self.procs.items():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self.logs[role].close()

    def worker_pids(self) -> dict[int, str]:
        return {self.procs[r].pid: r for r in ("worker1", "worker2")}

    def worker_on_port(self, client_port: int) -> str | None:
        """The worker whose TCP connection (to the local 1C, to the SMTP server) comes
        from ``client_port``: the one doing that job now."""
        import psutil  # type: ignore[import-untyped]

        for pid, role in self.worker_pids().items():
            try:
                conns = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.Error:
                continue
            if any(c.laddr and c.laddr.port == client_port for c in conns):
                return role
        return None

    # -- the probe ----------------------------------------------------------------------------

    def probe(self) -> list[list[str]]:
        path = self.folder / "probe.log"
        text = path.read_text() if path.exists() else ""
        return [line.split() for line in text.splitlines() if line.strip()]

    def lines(self, word: str, key: str | None = None) -> list[list[str]]:
        return [w for w in self.probe() if w[0] == word and (key is None or w[1] == key)]

    def release(self, key: str) -> None:
        (self.folder / f"release-{key}").write_text("")

    def fired(self) -> list[tuple[str, str]]:
        """(scheduler log, tick) of every probe tick a scheduler fired, in every log."""
        out = []
        for path in sorted(self.folder.glob("scheduler*.log")):
            for line in path.read_text(errors="replace").splitlines():
                words = line.split()
                if len(words) == 3 and words[0] == "fired" and words[1] == "prodshape.every-second":
                    out.append((path.name, words[2]))
        return out


def browser(shape: Shape) -> httpx.Client:
    """One browser: its cookie jar goes to both web processes (cookies ignore ports)."""
    return httpx.Client(timeout=30, follow_redirects=False)


def csrf(client: httpx.Client, url: str) -> str:
    page = client.get(url)
    found = re.search(CSRF_RE, page.text)
    assert found, f"{url}: {page.status_code} {page.text[:500]}"
    return found.group(1)


def sign_in(
    client: httpx.Client, base: str, login: str, password: str = PASSWORD
) -> httpx.Response:
    token = csrf(client, f"{base}/login")
    return client.post(
        f"{base}/login",
        data={"login": login, "password": password, "next": "/", "csrf_token": token},
    )


def signed_in(client: httpx.Client, base: str) -> bool:
    answer = client.get(f"{base}/identity/profile")
    assert answer.status_code in (200, 302, 303, 401), answer.status_code
    return answer.status_code == 200


def environment(folder: Path, settings: Path, site: Path) -> dict[str, str]:
    path = os.pathsep.join([str(site), str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("KABINET__") and k != "PYTHONPATH"
    }
    return {
        **env,
        "KABINET_SETTINGS": str(settings),
        "PYTHONPATH": path,
        "PRODSHAPE_DIR": str(folder),
    }
