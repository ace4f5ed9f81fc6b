"""Helpers of the companies tests (imported by name, like identity's)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from kabinet.access import Principal
from kabinet.host import Host

_numbers = itertools.count(1)


async def person(host: Host, name: str = "Person", **kwargs: Any) -> int:
    account = await host.services["identity"].create_account(
        full_name=f"{name} {next(_numbers)}",
        email=f"p-{uuid.uuid4().hex[:10]}@example.test",
        **kwargs,
    )
    return int(account.id)


def who(person_id: int) -> Principal:
    return Principal(person_id=person_id, name="x", kind="person")


async def staff(host: Host, role: str = "admin") -> Principal:
    person_id = await person(host, role)
    await host.services["roles"].grant(person_id, role)
    return who(person_id)
