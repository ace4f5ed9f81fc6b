"""A probe plugin loaded only by the production-shape test's processes (never installed).

Every process of the test finds it through an entry point the test writes into a folder
on ``PYTHONPATH``. Whatever it does is written as one line to ``$PRODSHAPE_DIR/probe.log``
(appends of one short line are atomic, whichever process writes), so the test counts
what happened across processes:

- the schedule ``prodshape.every-second`` sends ``prodshape.tick`` each second: ``tick``;
- ``prodshape.work(key, hold)``: ``start <key> <pid>``, then, with ``hold``, waits until
  the file ``release-<key>`` exists, then ``done <key> <pid>``: its effect;
- ``GET /prodshape/slow?key=…``: ``slow-start <key> <pid>``, waits for ``release-<key>``,
  answers ``finished <key>``: a request in flight for as long as the test wants.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from litestar import get

from kabinet.access import public
from kabinet.contrib import Actor, Manifest, Schedule
from kabinet.hookspecs import hookimpl

QUEUE = "prodshape"


def folder() -> Path:
    return Path(os.environ["PRODSHAPE_DIR"])


def note(*words: object) -> None:
    line = " ".join(str(w) for w in words) + "\n"
    fd = os.open(folder() / "probe.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def released(key: str, most: float = 120.0) -> None:
    end = time.monotonic() + most
    while not (folder() / f"release-{key}").exists() and time.monotonic() < end:  # noqa: ASYNC110 - another process makes the file
        await asyncio.sleep(0.05)


async def tick() -> None:
    note("tick", os.getpid())


async def work(key: str, hold: bool = False) -> None:
    note("start", key, os.getpid())
    if hold:
        await released(key)
    note("done", key, os.getpid())


@get("/prodshape/slow", access=public, include_in_schema=False)
async def slow(key: str) -> str:
    note("slow-start", key, os.getpid())
    await released(key)
    return f"finished {key}"


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="prodshape",
        version="1.0",
        title={"ru": "Проба", "en": "Probe"},
        requires=(),
        requires_host=">=0",
    )


@hookimpl
def actors(host: object) -> list[Actor]:
    return [
        Actor(name="prodshape.tick", fn=tick, queue=QUEUE, max_retries=0),
        Actor(name="prodshape.work", fn=work, queue=QUEUE, max_retries=0, time_limit_ms=180_000),
    ]


@hookimpl
def schedules(host: object) -> list[Schedule]:
    return [Schedule(name="prodshape.every-second", actor="prodshape.tick", interval=1)]


@hookimpl
def routers(host: object) -> list[object]:
    return [slow]
