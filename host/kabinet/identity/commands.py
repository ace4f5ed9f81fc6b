"""``kabinet users …``: the commands of the identity plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from kabinet.commands import Failure, host_command
from kabinet.identity.services import IdentityError, identity_service

if TYPE_CHECKING:
    from kabinet.host import Host


async def grant(host: Host, person_id: int, role: str, organization: int | None) -> str | None:
    """Give a role through the roles service; returns why not when it cannot."""
    from kabinet.roles.services import ROLES

    roles = host.services.find(ROLES)  # optional: identity does not require roles
    if roles is None:
        return "the roles service is not running in this process"
    try:
        await roles.grant(person_id, role, organization)
    except Exception as exc:  # the roles plugin's refusal, shown to the operator as is
        return f"{type(exc).__name__}: {exc}"
    return None


@click.group()
def users() -> None:
    """People who sign in: create the first admin."""


@users.command("create-admin")
@click.option("--email", required=True, help="The admin's e-mail (the login).")
@click.option("--name", "full_name", default="Administrator", show_default=True)
@click.password_option(help="The password (asked when not given).")
@click.pass_context
@host_command(started=True)
async def create_admin(
    ctx: click.Context, host: Host, email: str, full_name: str, password: str, *, session: Any
) -> None:
    """Create an account and give it the admin role globally (both or neither)."""
    service = identity_service(host)
    if await service.find_by_email(email) is not None:
        raise Failure(f"an account with e-mail {email} already exists")
    try:
        account = await service.create_account(
            full_name=full_name, email=email, password=password, email_confirmed=True
        )
    except IdentityError as exc:
        raise Failure(f"{exc.field or 'input'}: {exc.message}") from None
    problem = await grant(host, account.id, "admin", None)
    if problem:  # the account goes with the unit of work: no admin without the role
        raise Failure(f"the admin role could not be granted: {problem}")
    click.echo(f"created account {account.id} <{account.email}>")
    click.echo("granted the admin role (global)")
