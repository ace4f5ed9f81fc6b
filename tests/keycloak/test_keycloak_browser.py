"""A real ``kabinet serve`` configured for the fake Keycloak, signed into in chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_keycloak import ADMIN_PASSWORD, CLIENT_SECRET, FakeKeycloak

from kabinet.plugins import entry_point_candidates
from kabinet.testing import chromium, free_port, kabinet_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APPS = sorted(c.name for c in entry_point_candidates() if not c.builtin)
"""Every installed app: the portal here is the host's built-ins with Keycloak alone."""


@pytest.fixture
def portal(tmp_path: Path, fake: FakeKeycloak) -> Iterator[str]:
    """``kabinet serve`` on a free port, on its own SQLite database, using ``fake``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = tmp_path / "settings.toml"
    settings.write_text(
        textwrap.dedent(
            f"""
            [host]
            database_url = "sqlite+aiosqlite:///{tmp_path / "portal.sqlite3"}"
            base_url = "{url}"
            secret_key = "browser-test-secret"

            [keycloak]
            server_url = "{fake.url}"
            realm = "{fake.realm}"
            client_id = "{fake.client_id}"
            client_secret = "{CLIENT_SECRET}"
            admin_username = "{fake.admin_username}"
            admin_password = "{ADMIN_PASSWORD}"
            """
        )
        # Only the host's built-ins: this test is about sign-in, not the apps.
        + "".join(f"\n[{app}]\nenabled = false\n" for app in APPS)
    )
    kabinet = str(Path(sys.executable).parent / "kabinet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET")}
    done = subprocess.run(
        [kabinet, "--settings", str(settings), "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.fail(f"kabinet db upgrade failed: {done.stderr[-2000:]}")
    with kabinet_server(
        tmp_path, "--settings", str(settings), "serve", port=port, env=env, timeout=60
    ):
        yield url


def test_sign_in_through_keycloak_and_out_of_both(portal: str, fake: FakeKeycloak) -> None:
    user = fake.add_user(
        "olga",
        password="olga-password-1",
        email="olga@example.com",
        first_name="Ольга",
        last_name="Кузнецова",
    )
    with chromium() as browser:
        page = browser.new_context(locale="ru-RU").new_page()
        # The portal's sign-in page sends the browser to Keycloak's.
        page.goto(portal + "/login")
        page.wait_for_url(re.compile(re.escape(f"{fake.issuer()}/protocol/openid-connect/auth?")))
        page.fill("#username", "olga")
        page.fill("#password", "wrong")
        page.click("#kc-login")
        assert page.locator("#input-error").inner_text() == "Invalid username or password."
        page.fill("#username", "olga")
        page.fill("#password", "olga-password-1")
        page.click("#kc-login")

        # Back at the portal, signed in as the person Keycloak knows.
        page.wait_for_url(portal + "/")
        assert page.locator(".topbar .who").inner_text() == "Ольга Кузнецова"
        assert len(fake.active_sessions(user.id)) == 1
        cookies = {c["name"]: c for c in page.context.cookies(portal)}
        assert cookies["kabinet_session"]["httpOnly"]
        assert cookies["kabinet_session"]["sameSite"] == "Lax"

        # Signing out ends the Keycloak session too: the next sign-in asks again.
        page.locator("details.usermenu > summary").click()  # the menu under the name
        page.locator(".signout button").click()
        page.wait_for_url(portal + "/")
        assert page.locator(".signout").count() == 0
        assert fake.active_sessions(user.id) == []
        assert "kabinet_session" not in {c["name"] for c in page.context.cookies(portal)}
        page.locator("a[href^='/login']").first.click()
        page.wait_for_url(re.compile(re.escape(f"{fake.issuer()}/protocol/openid-connect/auth?")))
        assert page.locator("#kc-form-login").is_visible()
