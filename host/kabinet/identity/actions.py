"""What each line of the security log records, in words (the log keeps the code; the
page shows the label in the reader's language, through identity's catalog)."""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    "login": "Signed in",
    "logout": "Signed out",
    "login.failed": "Failed sign-in",
    "login.locked": "Sign-in locked after failed attempts",
    "password.changed": "Password changed",
    "password.set": "Password set by staff",
    "password.reset": "Password reset by link",
    "password.reset_requested": "Password reset asked for",
    "sessions.ended": "Sessions ended",
    "code.sent": "Confirmation code sent",
    "code.confirmed": "Confirmation code accepted",
    "code.wrong": "Wrong confirmation code",
    "token.created": "API token created",
    "token.revoked": "API token revoked",
    "token.used": "API token used",
    "account.created": "Account created",
    "account.contacts_changed": "E-mail or phone changed",
    "account.disabled": "Account disabled",
    "account.enabled": "Account enabled",
    "account.erased": "Person removed (personal data erased)",
    "roles.grant.given": "Role granted",
    "roles.grant.revoked": "Role revoked",
    "roles.role.created": "Role created",
    "roles.role.renamed": "Role renamed",
    "roles.role.permissions_changed": "Role's permissions changed",
    "roles.role.deleted": "Role deleted",
}
"""A security event's code and its label (an English message id)."""


def label(action: str) -> str | None:
    """The English message id of ``action``, or None for a code without one."""
    return ACTIONS.get(action)
