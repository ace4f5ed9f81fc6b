"""The ``kabinet`` command starts with the garbage collector paused and runs it again,
with the start's objects frozen, once the host has started (kabinet.warmup; the start-up
bench, docs/performance.md). Each case runs in a fresh interpreter: the collector is
process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

SCRIPT = """
import asyncio, gc, json, sys
from kabinet import warmup
if sys.argv[2] == "pause":
    warmup.pause()
from kabinet.host import Host

async def main():
    host = await Host.create(None, env={
        "KABINET__HOST__DATABASE_URL": "sqlite+aiosqlite:///" + sys.argv[1] + "/w.sqlite3",
        "KABINET__HOST__VAR_DIR": sys.argv[1],
    })
    await host.migrations.upgrade()
    before = gc.isenabled()
    await host.startup()
    after = gc.isenabled()
    await host.shutdown()
    print(json.dumps({"before": before, "after": after, "frozen": gc.get_freeze_count()}))

asyncio.run(main())
"""


def started(tmp_path: Path, mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_a_paused_start_runs_the_collector_again_once_the_host_has_started(
    tmp_path: Path,
) -> None:
    seen = started(tmp_path, "pause")
    assert seen["before"] is False  # building the host ran without the collector
    assert seen["after"] is True
    assert isinstance(seen["frozen"], int)
    assert seen["frozen"] > 10_000  # the start's objects, out of the collector's sight


def test_a_host_built_by_a_program_of_its_own_leaves_its_collector_alone(
    tmp_path: Path,
) -> None:
    assert started(tmp_path, "plain") == {"before": True, "after": True, "frozen": 0}
