"""Commands through ``kabinet.commands.host_command``: the host from ``--settings``, one
unit of work (everything or nothing), a clean message instead of a traceback."""

from __future__ import annotations

import uuid

import pytest

from kabinet.identity.services import identity_service
from kabinet.roles.services import ROLES
from kabinet.testing import Portal

pytestmark = pytest.mark.smoke


async def test_create_admin_makes_an_account_with_the_admin_role(portal: Portal) -> None:
    email = f"root-{uuid.uuid4().hex[:8]}@example.test"

    done = await portal.command(
        "users", "create-admin", "--email", email, "--password", "a long passphrase 42"
    )

    assert done.exit_code == 0, done.output
    assert f"<{email}>" in done.output
    account = await identity_service(portal.host).find_by_email(email)
    assert account is not None
    grants = await portal.host.services.of(ROLES).grants_of(account.id)
    assert [(g.role.code, g.organization_id) for g in grants] == [("admin", None)]


async def test_create_admin_refuses_a_taken_email_and_a_weak_password_cleanly(
    portal: Portal,
) -> None:
    email = f"root-{uuid.uuid4().hex[:8]}@example.test"
    assert (
        await portal.command("users", "create-admin", "--email", email, "--password", "x" * 20)
    ).exit_code == 0

    again = await portal.command(
        "users", "create-admin", "--email", email, "--password", "another long one 42"
    )
    weak = await portal.command(
        "users", "create-admin", "--email", "weak-" + email, "--password", "1"
    )

    assert again.exit_code == 2
    assert f"an account with e-mail {email} already exists" in again.output
    assert "Traceback" not in again.output
    assert weak.exit_code == 2
    assert weak.output.startswith("Error: password:")
    assert await identity_service(portal.host).find_by_email("weak-" + email) is None
