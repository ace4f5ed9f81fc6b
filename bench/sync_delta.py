"""bench/sync_delta: a delta of changed orders from the local 1C into PostgreSQL.

Every order (with two services, a vehicle and a document) changed in 1C, read from the
change register by keyset, fetched by ``Ref_Key``, decoded and applied through the
shipments sink, end to end, against the raw baseline of the same run; the local 1C server
runs in its own process. See ``bench/sync_common.py`` for what is measured and how.

Targets (issue 8): 100,000 orders <= 15 s, 10,000 <= 2 s.

    .venv/bin/python bench/sync_delta.py [--orders 10000] [--counterparties 100]
"""

from __future__ import annotations

import asyncio
import sys

from sync_common import arguments, machine, measure, report_delta, report_replay, target


def main() -> int:
    args = arguments(__doc__ or "")
    out = asyncio.run(measure(args))
    print(machine())
    report_delta(out, args.profile)
    report_replay(out)
    return 0 if out["delta"] <= target(args.orders) and out["replay_writes"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
