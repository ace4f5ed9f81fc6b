"""Helpers of the Keycloak tests (a module of its own: ``conftest`` is ambiguous)."""

from __future__ import annotations

from fake_keycloak import ADMIN_PASSWORD, CLIENT_SECRET, FakeKeycloak


def keycloak_env(fake: FakeKeycloak, **extra: str) -> dict[str, str]:
    """Settings (as environment variables) pointing the portal at ``fake``."""
    return {
        "KABINET__KEYCLOAK__SERVER_URL": fake.url,
        "KABINET__KEYCLOAK__REALM": fake.realm,
        "KABINET__KEYCLOAK__CLIENT_ID": fake.client_id,
        "KABINET__KEYCLOAK__CLIENT_SECRET": CLIENT_SECRET,
        "KABINET__KEYCLOAK__ADMIN_USERNAME": fake.admin_username,
        "KABINET__KEYCLOAK__ADMIN_PASSWORD": ADMIN_PASSWORD,
        **extra,
    }
