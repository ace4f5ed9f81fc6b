"""bench/booking_import: 1,000 new-order rows of an XLSX file checked and shown.

Issue 18: "1,000 rows validated and shown in under 5 s on this machine". In one run,
on the same file:

- raw: openpyxl reads the workbook's rows (read-only, values only) and nothing else: the
  floor any XLSX import pays;
- Kabinet: ``POST /booking/import`` through the real app as a signed-in client: the file
  read, every row converted and checked by the form's rules (the person's contracts, the
  dictionaries' vehicle types and services, dates, windows, bounds), the file kept in the
  file storage, and the page with every row and its errors rendered in the shell.

One row in ten has an error (a missing place, a weight that is no number), as a real file
might. The portal runs on a fresh SQLite database (``KABINET_TEST_DB=postgresql`` for
PostgreSQL), through the test harness (``kabinet.testing.start_portal``). Printed: the
median of ``--rounds`` runs of each, and whether the target holds (exit 1 when missed).

    .venv/bin/python bench/booking_import.py [--rows 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 5.0
TESTS = Path(__file__).resolve().parents[1] / "plugins" / "booking" / "tests"


def workbook(rows: int, contract: str, today: dt.date) -> bytes:
    from openpyxl import Workbook

    from kabinet_booking.imports import COLUMNS

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    for n in range(rows):
        bad = n % 10 == 9
        row = {
            "contract": contract,
            "origin": "" if bad else f"Москва, склад {n % 40}",
            "destination": f"Казань, терминал {n % 7}",
            "loading_date": (today + dt.timedelta(days=2 + n % 20)).isoformat(),
            "loading_from": "09:00",
            "loading_to": "13:00",
            "delivery_date": (today + dt.timedelta(days=25)).isoformat(),
            "cargo_name": f"Груз {n}",
            "cargo_weight": "много" if bad else str(500 + n),
            "cargo_volume": "12.5",
            "cargo_places": str(1 + n % 30),
            "packaging": "Паллеты",
            "temperature": "+2..+8" if n % 3 == 0 else "",
            "shipper": "ООО «Отправитель»",
            "consignee": "ООО «Получатель»",
            "comment": f"Строка {n}",
        }
        sheet.append([row.get(c, "") for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def raw(content: bytes) -> int:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    count = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    return count


async def run(rows: int, rounds: int) -> int:
    os.environ.setdefault("KABINET_TEST_DB", "sqlite")
    sys.path.insert(0, str(TESTS))
    from booking_setup import company  # the tests' set-up: an organization with a contract

    from kabinet.testing import migrated_database, start_portal
    from kabinet_booking.services import BOOKING

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        url = await migrated_database(tmp)
        portal = await start_portal(tmp / "portal", url)
        try:
            c = await company(portal)
            service = portal.host.services.of(BOOKING)
            number = (await service.contracts(c.client.principal))[0].number
            content = workbook(rows, number, service.today())
            web = await portal.signed_in(c.client)
            raw_s: list[float] = []
            ours_s: list[float] = []
            for _ in range(rounds):
                started = time.perf_counter()
                assert raw(content) == rows + 1
                raw_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                shown = await web.post(
                    "/booking/import",
                    files={"file": ("orders.xlsx", content, "application/octet-stream")},
                )
                ours_s.append(time.perf_counter() - started)
                assert shown.status_code == 200, shown.text[:500]
                valid = re.search(r'id="import-valid">(\d+)<', shown.text)
                assert valid is not None
                assert int(valid.group(1)) == rows - rows // 10
                assert shown.text.count('class="card invalid"') == rows // 10
        finally:
            await portal.aclose()
    ours, floor = statistics.median(ours_s), statistics.median(raw_s)
    print(f"rows: {rows} ({rows // 10} with errors), file {len(content) / 1024:.0f} KiB")
    print(f"raw openpyxl read:           {floor * 1000:8.0f} ms (median of {rounds})")
    print(f"Kabinet checked and shown:   {ours * 1000:8.0f} ms (median of {rounds})")
    verdict = "met" if ours < TARGET_S else "MISSED"
    print(f"ratio: {ours / floor:.1f}x; target < {TARGET_S:.0f} s: {verdict}")
    return 0 if ours < TARGET_S else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.rows, args.rounds)))


if __name__ == "__main__":
    main()
