"""Real ``kabinet scheduler`` processes for the scheduler tests: a plugin whose one
schedule sends ``beat.note`` (it prints) on a queue of the test's own, a Redis database,
settings, and the processes' output read back as ``(state, tick)`` lines."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from kabinet.testing import PluginFactory


@dataclasses.dataclass(frozen=True)
class Beat:
    """A portal with one fast schedule, ``schedule``, run by scheduler processes."""

    settings: Path
    env: dict[str, str]
    redis_url: str
    queue: str
    schedule: str
    folder: Path

    def start(self, n: int) -> subprocess.Popen[bytes]:
        """Scheduler process ``n``, its output in ``scheduler<n>.out`` (``.err``)."""
        exe = str(Path(sys.executable).with_name("kabinet"))
        out = self.log(n)
        with out.open("w") as stdout, out.with_suffix(".err").open("w") as stderr:
            argv = [exe, "scheduler", "-v"]
            return subprocess.Popen(argv, env=self.env, stdout=stdout, stderr=stderr)

    def log(self, n: int) -> Path:
        return self.folder / f"scheduler{n}.out"

    def lines(self, n: int) -> list[tuple[str, str]]:
        """Process ``n``'s ticks so far: ``("fired" | "skipped", tick time)``."""
        words = (line.split() for line in self.log(n).read_text().splitlines())
        return [(w[0], w[2]) for w in words if len(w) == 3 and w[1] == self.schedule]

    def errors(self, n: int) -> str:
        return self.log(n).with_suffix(".err").read_text()


def beat(
    plugin_factory: PluginFactory,
    folder: Path,
    database_url: str,
    *,
    schedule: str,
    interval: float,
) -> Beat:
    """The plugin, a Redis database picked at random (1-15) and the settings."""
    queue = f"beat_{uuid.uuid4().hex[:8]}"
    plugin_factory.add(
        "beat",
        f"""
        @hookimpl
        def actors(host):
            return [Actor(name="beat.note", fn=print, queue={queue!r})]

        @hookimpl
        def schedules(host):
            return [Schedule(name={schedule!r}, actor="beat.note", interval={interval!r})]
        """,
    )
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    settings = folder / "settings.toml"
    settings.write_text(f'[host]\ndatabase_url = "{database_url}"\nredis_url = "{url}"\n')
    env = {
        **os.environ,
        "KABINET_SETTINGS": str(settings),
        "PYTHONPATH": os.pathsep.join([str(plugin_factory.site), os.environ.get("PYTHONPATH", "")]),
    }
    return Beat(settings, env, url, queue, schedule, folder)


def stop(procs: Sequence[subprocess.Popen[bytes]], *, timeout: float = 20) -> list[int]:
    """Stop the scheduler processes as an operator does (SIGTERM), each given ``timeout``
    seconds to close its Redis and database connections and exit; one that does not is
    killed (its code is then -9, which no test takes for a clean exit). Returns the exit
    codes; on every path no process is left running."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes
