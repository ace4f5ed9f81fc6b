"""The ``[keycloak]`` section: off by default, complete or refused when server_url is set."""

from __future__ import annotations

import pytest

from kabinet.errors import SettingsError
from kabinet.keycloak.settings import KeycloakSettings
from kabinet.settings import load_raw

pytestmark = pytest.mark.smoke


def validate(**env: str) -> KeycloakSettings:
    raw = load_raw(None, {f"KABINET__KEYCLOAK__{k.upper()}": v for k, v in env.items()})
    return raw.validate("keycloak", KeycloakSettings)


def test_off_without_server_url() -> None:
    assert not validate().active


def test_complete_settings_with_client_credentials() -> None:
    s = validate(
        server_url="https://sso.example.ru/",
        realm="portal",
        admin_client_id="kabinet-sync",
        admin_client_secret="s3cret-value",
        verify_tls="false",
        timeout="5",
    )
    assert s.active
    assert s.base_url == "https://sso.example.ru/"
    assert s.verify is False
    assert s.timeout == 5


@pytest.mark.parametrize(
    ("env", "fault"),
    [
        ({"server_url": "sso.example.ru"}, "[keycloak] server_url: expected an http(s) URL"),
        ({"server_url": "https://sso.example.ru"}, "[keycloak] realm: required"),
        (
            {"server_url": "https://sso", "realm": "r", "admin_username": "admin"},
            "admin credentials are required",
        ),
        (
            {
                "server_url": "https://sso",
                "realm": "r",
                "admin_client_secret": "x",
                "scope": "email",
            },
            "[keycloak] scope: must include openid",
        ),
    ],
)
def test_incomplete_settings_are_refused(env: dict[str, str], fault: str) -> None:
    with pytest.raises(SettingsError) as caught:
        validate(**env)
    assert fault in str(caught.value)


def test_a_fault_does_not_print_the_secrets() -> None:
    with pytest.raises(SettingsError) as caught:
        validate(server_url="https://sso", admin_password="hunter2-password")
    assert "hunter2" not in str(caught.value)
