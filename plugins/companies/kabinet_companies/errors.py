"""The companies app's errors (public: other apps may catch them).

One type, :class:`CompanyError`, a refusal naming the field at fault, and its kinds by
HTTP answer.
"""

from __future__ import annotations

from kabinet.forms import FieldError

__all__ = ["CompanyError", "Conflict", "Forbidden", "NotFound"]


class CompanyError(FieldError):
    """A refused request; ``field`` names the input at fault, ``status`` the HTTP answer
    (the page kit's :class:`~kabinet.forms.FieldError`: a page shows it beside its field)."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)


class NotFound(CompanyError):
    status = 404


class Forbidden(CompanyError):
    status = 403


class Conflict(CompanyError):
    status = 409
