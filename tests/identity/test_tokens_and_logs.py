"""API tokens (scope, JSON API only, revocation) and logs that never carry a secret."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest
from identity_support import PASSWORD, csrf, messages, sign_in, unique_email

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.services import (
    IdentityPrincipal,
    IdentityService,
    InvalidInput,
    identity_service,
)
from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke
TOKENS = "identity.tokens.manage"


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    """The host's built-ins only, logging everything (the statements too)."""
    host = {"log_level": "DEBUG", "database_echo": True}
    return await make_portal(plugins=[], settings={"host": host})


@pytest.fixture
def web(portal: Portal) -> tuple[Host, httpx.AsyncClient]:
    """The host and a browser at the portal (it signs in through the forms)."""
    return portal.host, portal.browser()


async def client_person(host: Host, org: int) -> tuple[IdentityService, Any, IdentityPrincipal]:
    service = identity_service(host)
    person = await service.create_account(
        full_name="Клиент Токенов", email=unique_email("tok"), password=PASSWORD
    )
    await host.services["roles"].grant(person.id, "client", org)
    principal = IdentityPrincipal(person_id=person.id, name=person.full_name, kind="person")
    return service, person, principal


async def test_token_is_scoped_shown_once_and_works_only_on_the_api(
    web: tuple[Host, httpx.AsyncClient], clock: FrozenClock
) -> None:
    host, client = web
    service, person, me = await client_person(host, 7001)
    with pytest.raises(InvalidInput) as foreign:
        await service.create_token(me, "ERP", [TOKENS], [7002])
    assert foreign.value.field == "organizations"
    with pytest.raises(InvalidInput) as unheld:
        await service.create_token(me, "ERP", ["identity.accounts.manage"], [7001])
    assert unheld.value.field == "permissions"
    made = await service.create_token(me, "ERP", [TOKENS], [7001])
    assert made.token.startswith("kbt_")
    assert made.row.token_hash != made.token
    assert made.token not in str(await service.tokens_of(person.id))

    auth = {"Authorization": f"Bearer {made.token}"}
    answer = await client.get("/api/identity/me", headers=auth)
    assert answer.status_code == 200
    assert answer.json() == {
        "id": person.id,
        "name": person.full_name,
        "kind": "token",
        "permissions": [TOKENS],
        "organizations": [7001],
    }
    allowed = await host.access.organizations(await service.resolve_token(made.token) or me, TOKENS)
    assert set(allowed) == {7001} if isinstance(allowed, (set, frozenset)) else False
    # a token is no key to the pages
    page = await client.get("/identity/profile", headers=auth, follow_redirects=False)
    assert page.status_code == 303
    listed = await service.tokens_of(person.id)
    assert listed[0].last_used_at is not None
    await service.revoke_token(person.id, made.row.id)
    assert (await client.get("/api/identity/me", headers=auth)).status_code == 401
    wrong = {"Authorization": "Bearer kbt_not-a-token"}
    assert (await client.get("/api/identity/me", headers=wrong)).status_code == 401


async def test_token_made_on_the_profile_page(
    web: tuple[Host, httpx.AsyncClient],
) -> None:
    host, client = web
    _service, person, _ = await client_person(host, 7003)
    await sign_in(client, person.email)
    token = await csrf(client, "/identity/profile")
    made = await client.post(
        "/identity/profile/tokens",
        data={
            "name": "1С",
            "permissions": [TOKENS],
            "organizations": ["7003"],
            "csrf_token": token,
        },
    )
    assert made.status_code == 200
    shown = re.search(r'<code class="id-token">(kbt_[^<]+)</code>', made.text)
    assert shown
    again = await client.get("/identity/profile")
    assert shown.group(1) not in again.text
    assert "1С" in again.text
    answer = await client.get(
        "/api/identity/me", headers={"Authorization": f"Bearer {shown.group(1)}"}
    )
    assert answer.status_code == 200
    assert answer.json()["kind"] == "token"


async def test_no_secret_reaches_the_logs(
    web: tuple[Host, httpx.AsyncClient],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logins, a failed one, codes, a reset and token use: every log line is checked."""
    caplog.set_level(logging.DEBUG)
    # httpx is the test's own browser here (it logs the URLs it asks for); the portal
    # serves through uvicorn, whose access log is off, and logs paths without queries.
    httpx_logger = logging.getLogger("httpx")
    httpx_level = httpx_logger.level
    httpx_logger.setLevel(logging.WARNING)
    try:
        await _secret_flow(web, capfd, caplog)
    finally:
        httpx_logger.setLevel(httpx_level)


async def _secret_flow(
    web: tuple[Host, httpx.AsyncClient],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, client = web
    service, person, me = await client_person(host, 7004)
    secrets: list[str] = [PASSWORD, "Wrong-Password-42", "a whole new secret"]

    answer = await sign_in(client, person.email, "Wrong-Password-42")
    assert answer.status_code == 400
    answer = await sign_in(client, person.email)
    assert answer.status_code == 303
    secrets.append(client.cookies["kabinet_session"])

    token = await csrf(client, "/identity/profile")
    sent = await client.post(
        "/identity/profile/codes/send", data={"purpose": "confirm_email", "csrf_token": token}
    )
    assert sent.status_code == 200
    code = [m for m in messages(host) if m["account_id"] == person.id][-1]["context"]["code"]
    # Six digits can also stand inside a longer run (a memory address in a DEBUG line,
    # 0x7f797854c400, held one): the code leaks as a word of its own.
    code_alone = re.compile(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])")
    wrong = "000000" if code != "000000" else "111111"
    await client.post(
        "/identity/profile/codes/check",
        data={"purpose": "confirm_email", "code": wrong, "csrf_token": token},
    )
    checked = await client.post(
        "/identity/profile/codes/check",
        data={"purpose": "confirm_email", "code": code, "csrf_token": token},
    )
    assert checked.status_code == 200

    await client.post("/identity/reset", data={"login": person.email, "csrf_token": token})
    link = [m for m in messages(host) if m["account_id"] == person.id][-1]["context"]["link"]
    reset = link.split("token=", 1)[1]
    secrets += [link, reset]
    form = await client.get(f"/identity/reset/confirm?token={reset}")
    assert form.status_code == 200
    done = await client.post(
        "/identity/reset/confirm",
        data={
            "token": reset,
            "password": "a whole new secret",
            "password2": "a whole new secret",
            "csrf_token": token,
        },
    )
    assert done.status_code == 200

    made = await service.create_token(me, "ERP", [TOKENS], [7004])
    secrets.append(made.token)
    used = await client.get("/api/identity/me", headers={"Authorization": f"Bearer {made.token}"})
    assert used.status_code == 200

    out, err = capfd.readouterr()
    records = "\n".join(f"{r.getMessage()} {r.args!r} {vars(r)!r}" for r in caplog.records)
    everything = "\n".join([out, err, records])
    assert "login" in everything
    assert "request" in everything
    leaked = [
        line
        for line in everything.splitlines()
        if any(s in line for s in secrets) or code_alone.search(line)
    ]
    assert leaked == []
