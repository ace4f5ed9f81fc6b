"""The refusal of a Keycloak sign-in, apart from :mod:`kabinet.keycloak.login` so that the
routes import it without python-keycloak (which the portal loads only when Keycloak is
configured: it costs every start about 0.1 s)."""

from __future__ import annotations

__all__ = ["LoginError"]


class LoginError(Exception):
    """A sign-in that cannot be completed; ``reason`` is a stable code, ``status`` the answer.

    Messages never carry codes, tokens or the state itself.
    """

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
