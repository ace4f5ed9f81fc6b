"""The demo's accounts: one per built-in role made by ``demo_data``, and the table of them
``kabinet demo`` prints once the portal answers (the apps' demos make the clients and
managers, with :data:`DEMO_PASSWORD` too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.identity.commands import grant
from kabinet.identity.services import identity_service

if TYPE_CHECKING:
    from kabinet.host import Host

DEMO_PASSWORD = "kabinet-demo"  # noqa: S105 - printed on purpose: demo accounts only
DEMO_ACCOUNTS = (
    # role, e-mail, name, organization of the grant (None: global, or no grant for "user").
    # Clients and managers come from the apps' demos, which make them members of real
    # companies and assign them organizations (a client grant alone shows an empty portal).
    ("user", "user@demo.kabinet.example", "Ольга Новикова", None),
    ("admin", "admin@demo.kabinet.example", "Андрей Админов", None),
)


async def demo_accounts(host: Host) -> list[tuple[str, str, str | None]]:
    """Create one demo account per built-in role; returns (role, login, problem)."""
    service = identity_service(host)
    made = []
    for role, email, name, organization in DEMO_ACCOUNTS:
        account = await service.find_by_email(email)
        if account is None:
            account = await service.create_account(
                full_name=name, email=email, password=DEMO_PASSWORD, email_confirmed=True
            )
        problem = None
        if role != "user":
            problem = await grant(host, account.id, role, organization)
        made.append((role, email, problem))
    return made


# The README's table of demo accounts, printed by `kabinet demo` once the portal answers.
# Clients and managers are made by the apps' demos: a row whose account does not exist
# (its app is disabled) is left out.
DEMO_TABLE = (
    (
        "admin@demo.kabinet.example",
        "an administrator: roles, accounts, notifications, sync runs, plugins",
    ),
    ("manager1@demo.test", "a manager of the transport company, assigned to two client companies"),
    ("anna@demo.test", "a client working for two companies (the header switches between them)"),
    ("dmitry@demo.test", "a client of one company with orders, invoices and contracts"),
    ("user@demo.kabinet.example", "a registered person not yet linked to a company"),
)  # fmt: skip


def warn_demo(made: list[tuple[str, str, str | None]]) -> None:
    """Say which demo account did not get its role (the accounts are listed once ready)."""
    from kabinet.logging import get_logger

    for role, email, problem in made:
        if problem:
            get_logger("kabinet.demo").warning(
                "demo account without its role", account=email, role=role, problem=problem
            )


async def demo_table(host: Host) -> str:
    """The demo's accounts as the README shows them: a table of those that exist."""
    service = identity_service(host)
    rows = [("account", "who")]
    for email, who in DEMO_TABLE:
        if await service.find_by_email(email) is not None:
            rows.append((email, who))
    width = max(len(email) for email, _ in rows)
    rule = max(len(who) for _, who in rows)
    lines = [f"Demo accounts, all with the password {DEMO_PASSWORD}:", ""]
    for n, (email, who) in enumerate(rows):
        lines.append(f"  {email:<{width}}  {who}")
        if n == 0:
            lines.append(f"  {'-' * width}  {'-' * rule}")
    return "\n".join(lines)
