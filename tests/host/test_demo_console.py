"""A newcomer's first run (issue 16, point 9): ``kabinet demo`` says where the portal is and
prints the README's table of accounts once it answers, and the console stays quiet after
that; the demo reads ``settings.toml`` from the folder it runs in."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from kabinet.testing import kabinet_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The accounts table of the README: | `login` | who |
ACCOUNTS = re.findall(r"^\| `([^`]+@[^`]+)` \| (.+?) \|$", README, re.MULTILINE)
QUIET_AFTER_READY = 5  # lines a quiet console may still show in the seconds after the table


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines()


def test_demo_prints_the_accounts_table_once_ready_then_stays_quiet(tmp_path: Path) -> None:
    assert len(ACCOUNTS) == 5, "the README's table of demo accounts"
    shutil.copy(ROOT / "settings.toml", tmp_path / "settings.toml")
    env = {**os.environ, "KABINET_DEMO_DIR": str(tmp_path / "var")}
    with kabinet_server(tmp_path, "demo", env=env, timeout=180) as url:
        log = tmp_path / "server.log"
        deadline = time.monotonic() + 10
        while not any("admin@demo.kabinet.example" in line for line in _lines(log)):
            assert time.monotonic() < deadline, "no accounts table:\n" + log.read_text()[-3000:]
            time.sleep(0.2)  # polling the process's output
        time.sleep(5)  # what the console shows in the first seconds after start
        lines = _lines(log)
    text = "\n".join(lines)
    said = [n for n, line in enumerate(lines) if f"{url}/" in line and "ready" in line]
    assert said, "the portal's address once ready:\n" + text
    ready = said[0]
    before = lines[:ready]
    # Before the portal answers: a few plain lines, no log lines, no accounts.
    assert len(before) <= 4, text
    assert not any("[info" in line or "[warning" in line for line in before), text
    assert "@demo" not in "\n".join(before), text
    after = lines[ready + 1 :]
    table = [n for n, line in enumerate(after) if "kabinet-demo" in line]
    assert table, "the password is printed with the table:\n" + text
    rows = {}
    for line in after:
        cells = line.split(maxsplit=1)
        if len(cells) == 2 and "@" in cells[0]:
            rows[cells[0]] = cells[1].strip()
    assert rows == dict(ACCOUNTS), text
    end = max(n for n, line in enumerate(after) if line.split()[:1] and "@" in line.split()[0])
    noise = [line for line in after[end + 1 :] if line.strip()]
    assert len(noise) < QUIET_AFTER_READY, "the console after start:\n" + "\n".join(noise)
    assert "re-sent" not in text, text
    assert "message written" not in text, text
