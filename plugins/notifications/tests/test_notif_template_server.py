"""A real ``kabinet demo`` server, probed from outside as staff: evil templates in the
editor's preview are refused with a 400 quickly, and while they are being sent another
client's requests keep being answered (the server's event loop is never held)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from test_notif_template_limits import ATTACKS, QUICK

from kabinet.testing import disabled_env, kabinet_server

pytestmark = pytest.mark.slow

ONLY = ("notifications",)  # the plugins enabled; every other installed one is off
ADMIN = "admin@demo.kabinet.example"
PASSWORD = "kabinet-demo"  # the demo accounts' printed password
EDITOR = "/notifications/n/identity.code/email/ru"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("notifications-templates-demo")
    var = folder / "var"
    (folder / "settings.toml").write_text(f'[host]\nvar_dir = "{var}"\n')
    env = {**os.environ, "KABINET_DEMO_DIR": str(var), **disabled_env(ONLY)}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env, timeout=90) as url:
        yield url


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[-2000:]
    return found.group(1)


def _staff(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    token = _token(client.get("/login").text)
    signed = client.post(
        "/login", data={"login": ADMIN, "password": PASSWORD, "next": "/", "csrf_token": token}
    )
    assert signed.status_code in (302, 303), signed.text[-2000:]
    return client


def test_evil_previews_get_a_400_and_do_not_stall_the_server(demo: str) -> None:
    staff = _staff(demo)
    token = _token(staff.get(EDITOR).text)
    waits: list[float] = []
    done = threading.Event()

    def another_person() -> None:
        with httpx.Client(base_url=demo, timeout=60) as other:
            while not done.is_set():
                started = time.monotonic()
                assert other.get("/login").status_code == 200
                waits.append(time.monotonic() - started)

    watcher = threading.Thread(target=another_person)
    watcher.start()
    answers: list[tuple[str, str, int, float, str]] = []
    try:
        for name in ("huge power", "nested loops", "repeated text", "doubling", "include"):
            source, reason = ATTACKS[name]
            started = time.monotonic()
            response = staff.post(
                EDITOR, data={"csrf_token": token, "body": source, "action": "preview"}
            )
            elapsed = time.monotonic() - started
            answers.append((name, reason, response.status_code, elapsed, response.text))
    finally:
        done.set()
        watcher.join()
        staff.close()
    assert waits
    assert max(waits) < 1.0, max(waits)  # the other person was never kept waiting
    for name, reason, status, elapsed, text in answers:
        assert status == 400, (name, status)
        assert elapsed < QUICK, (name, elapsed)
        assert f'data-reason="{reason}"' in text, name
