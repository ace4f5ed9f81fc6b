"""Refusals of the identity service: each says what to fix and, when it can, which field."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import structlog

from kabinet.forms import FieldError

if TYPE_CHECKING:
    pass

log = structlog.get_logger("kabinet.identity")


# --- errors ---------------------------------------------------------------------------


class IdentityError(FieldError):
    """A refusal a person can act on; ``field`` names the form field at fault (the page
    kit's :class:`~kabinet.forms.FieldError`: shown beside the field, named on the API)."""

    code = "identity.error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field)


class InvalidInput(IdentityError):
    code = "identity.invalid"


class AccountExists(IdentityError):
    code = "identity.exists"


class NotFound(IdentityError):
    code = "identity.not_found"


class RateLimited(IdentityError):
    """Too many attempts; ``retry_at`` says when to try again."""

    code = "identity.rate_limited"
    status = 429

    def __init__(self, message: str, retry_at: dt.datetime | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class CodeRejected(IdentityError):
    code = "identity.code_rejected"

    def __init__(self, message: str, *, reason: str, remaining: int = 0) -> None:
        super().__init__(message, field="code")
        self.reason = reason
        self.remaining = remaining
