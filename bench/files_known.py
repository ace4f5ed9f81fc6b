"""bench/files_known: the end of a delta whose orders' files are all fetched already.

After a delta the integration notes the files the changed orders name
(``kabinet_integration.files.queue_files``: new ones are fetched ahead). When the orders
changed but their files did not, every file is known and fetched. This bench builds that
state in a throwaway database (``--files`` file rows ``fetched``, each with its copy in the
host's local file storage, one order each) and times ``queue_files`` over them, counting
the file storage's calls. ``--head-ms`` adds that latency to each storage call, as an S3
``HEAD`` request has (10-30 ms); 0 is the local disk. Until the storage was no longer asked,
every known file cost one call, one after the other.

    KABINET_TEST_DB=postgresql .venv/bin/python bench/files_known.py [--files 5000] [--head-ms 15]

To compare with an older commit, run its code: ``git archive <commit> plugins/integration
| tar -x -C /tmp/before`` and ``PYTHONPATH=/tmp/before/plugins/integration``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet.plugins import entry_point_candidates
from kabinet.testing import create_empty_database, drop_database


def settings_text() -> str:
    others = sorted(
        {c.name for c in entry_point_candidates() if not c.builtin}
        - {"companies", "shipments", "integration"}
    )
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in others)
    return (
        f'[host]\nvar_dir = "var"\nsecret_key = "bench"\n{disabled}'
        '[integration.sources.onec]\nbase_url = "http://127.0.0.1:1/x"\n'
        'files_first_load = "ahead"\n'
    )


async def measure(files: int, head_ms: float, rounds: int) -> dict[str, Any]:
    from kabinet_integration import files as f
    from kabinet_integration import models as im
    from kabinet_shipments.services import file_key

    tmp = Path(tempfile.mkdtemp(prefix="bench-files-"))
    url = await create_empty_database(tmp)
    settings = tmp / "settings.toml"
    settings.write_text(settings_text())
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": url})
    try:
        await host.migrations.upgrade()
        await host.startup()
        await stop_embedded(host)
        refs = {str(uuid.uuid4()): str(uuid.uuid4()) for _ in range(files)}  # file -> order
        now = host.clock.now()
        async with host.db.session() as s:
            rows = [
                {
                    "source": "onec",
                    "ref": ref,
                    "key": file_key(ref),
                    "entity": "file",
                    "state": "fetched",
                    "attempts": 1,
                    "updated_at": now,
                }
                for ref in refs
            ]
            for start in range(0, len(rows), 1000):
                await s.execute(insert(im.file), rows[start : start + 1000])
        for ref in refs:
            await host.files.save(file_key(ref), b"%PDF-1.4 bench", filename="f.pdf")

        calls = 0
        stat = host.files._stat

        async def counted(key: str) -> Any:
            nonlocal calls
            calls += 1
            if head_ms:
                await asyncio.sleep(head_ms / 1000)
            return await stat(key)

        host.files._stat = counted  # type: ignore[method-assign]
        sent = 0
        send = host.jobs.send_many

        async def counting(messages: Any) -> Any:
            nonlocal sent
            items = list(messages)
            sent += len(items)
            return await send(items)

        host.jobs.send_many = counting  # type: ignore[method-assign]
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await f.queue_files(host, "onec", refs)
            times.append(time.perf_counter() - started)
        return {"times": times, "calls": calls // rounds, "jobs": sent}
    finally:
        await host.shutdown()
        await drop_database(url)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--head-ms", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    out = asyncio.run(measure(args.files, args.head_ms, args.rounds))
    best = min(out["times"])
    print(
        f"{args.files} known files, storage call +{args.head_ms:g} ms: "
        f"noting them took {best * 1000:.0f} ms (best of {args.rounds}: "
        + ", ".join(f"{t * 1000:.0f}" for t in out["times"])
        + f" ms), {out['calls']} storage calls per delta, {out['jobs']} fetch jobs sent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
