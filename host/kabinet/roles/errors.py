"""What the roles service refuses with: each a :class:`~kabinet.forms.FieldError` naming the
input at fault, answered as a 4xx by the page kit and the API."""

from __future__ import annotations

from kabinet.forms import FieldError


class RoleError(FieldError):
    """A refused change; ``field`` names the input at fault (for a 4xx answer; the page
    kit's :class:`~kabinet.forms.FieldError`)."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field)


class NotFound(RoleError):
    status = 404


class Forbidden(RoleError):
    status = 403


class Conflict(RoleError):
    status = 409
