"""bench/sync_replay: the same delta from the local 1C applied again writes nothing.

Sets up as ``bench/sync_delta.py`` does (every order changed in 1C and the delta run),
then puts the cursor back and runs the same delta again: the rows written to the entity
tables (from ``pg_stat_user_tables``, read after the pool's connections are closed and a
stats flush), which must be 0, and its time. See ``bench/sync_common.py``.

    .venv/bin/python bench/sync_replay.py [--orders 10000] [--counterparties 100]
"""

from __future__ import annotations

import asyncio
import sys

from sync_common import arguments, machine, measure, report_delta, report_replay


def main() -> int:
    args = arguments(__doc__ or "")
    out = asyncio.run(measure(args))
    print(machine())
    report_replay(out)
    print("(the delta it replays:)")
    report_delta(out, args.profile)
    return 0 if out["replay_writes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
