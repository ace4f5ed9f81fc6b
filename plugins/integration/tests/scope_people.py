"""People of the scope tests, asked over HTTP: managers of one organization, global
holders of a role, an admin; organizations with a counterparty known by its 1C id."""

from __future__ import annotations

import contextlib
import itertools
import uuid

import httpx

from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.roles.services import ROLES, Conflict
from kabinet_companies.services import COMPANIES, SYSTEM, make_inn

_orgs = itertools.count(782_001)


async def person(host: Host) -> int:
    account = await host.services.of(IDENTITY).create_account(
        full_name="Сотрудник", email=f"scope-{uuid.uuid4().hex[:12]}@example.test"
    )
    return int(account.id)


async def cookie_of(host: Host, person_id: int) -> str:
    identity = host.services.of(IDENTITY)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=person_id, created_at=now, last_seen_at=now)
    )
    return f"{identity.settings.cookie_name}={token}"


async def role(
    host: Host, code: str, permissions: list[str], *, assigned_only: bool = False
) -> str:
    with contextlib.suppress(Conflict):  # made by an earlier test on this database
        await host.services.of(ROLES).create_role(
            code=code,
            name_ru=code,
            name_en=code,
            permissions=permissions,
            assigned_only=assigned_only,
        )
    return code


async def manager_of(host: Host, org: int, role_code: str = "manager") -> str:
    """A signed-in manager assigned to ``org`` holding ``role_code``."""
    someone = await person(host)
    await host.services.of(ROLES).grant(someone, role_code, None)
    await host.services.of(COMPANIES).assign_manager(None, org, someone)
    return await cookie_of(host, someone)


async def global_holder(host: Host, role_code: str) -> str:
    someone = await person(host)
    await host.services.of(ROLES).grant(someone, role_code, None)
    return await cookie_of(host, someone)


async def org_with_counterparty(host: Host) -> tuple[int, str]:
    """A new organization and the 1C id of its counterparty."""
    org = next(_orgs)
    companies = host.services.of(COMPANIES)
    await companies.ensure_organization(org, f"Компания {org}")
    ext = f"cp-{uuid.uuid4()}"
    await companies.create_counterparty(
        SYSTEM, name=f"Контрагент {org}", inn=make_inn(org), organization_id=org, external_id=ext
    )
    return org, ext


async def get(http: httpx.AsyncClient, path: str, cookie: str) -> httpx.Response:
    http.cookies.clear()
    return await http.get(path, headers={"Cookie": cookie})


async def post(http: httpx.AsyncClient, path: str, cookie: str) -> httpx.Response:
    """A form post with the CSRF token a page gave."""
    http.cookies.clear()
    await http.get("/integration/runs", headers={"Cookie": cookie})
    csrf = http.cookies.get("kabinet_csrf")
    assert csrf
    return await http.post(
        path, data={"csrf_token": csrf}, headers={"Cookie": f"{cookie}; kabinet_csrf={csrf}"}
    )
