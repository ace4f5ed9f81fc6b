"""Values and small helpers shared by the parts of the identity service."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Literal

import structlog

from kabinet.access import Principal
from kabinet.identity.errors import InvalidInput
from kabinet.identity.models import (
    Account,
    ApiToken,
)

if TYPE_CHECKING:
    pass

log = structlog.get_logger("kabinet.identity")

TOKEN_PREFIX = "kbt_"  # noqa: S105 - a public prefix, not a secret
"""API tokens start with this, so a leaked one is easy to recognise (and to scan for)."""
PURPOSES: dict[str, Literal["email", "sms"]] = {"confirm_email": "email", "confirm_phone": "sms"}


# --- values ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class IdentityPrincipal(Principal):
    """A :class:`Principal` with what identity knows beyond it.

    ``version`` is the account's version, so an access service can cache per person and
    drop its view when it changes.
    """

    version: int = 0
    language: str = ""
    timezone: str = ""
    email: str | None = None


@dataclasses.dataclass(frozen=True)
class Person:
    """What a web process keeps in memory per account, valid while ``version`` holds."""

    id: int
    version: int
    full_name: str
    status: str
    language: str
    timezone: str
    email: str | None


@dataclasses.dataclass(frozen=True)
class LoginResult:
    """A successful login: the cookie value (shown to the browser only) and the account."""

    token: str
    account: Account


@dataclasses.dataclass(frozen=True)
class NewToken:
    row: ApiToken
    token: str
    """The token in clear: shown once, never stored."""


# --- helpers --------------------------------------------------------------------------


def normalize_email(value: str) -> str:
    value = value.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or " " in value or len(value) > 254:
        raise InvalidInput("Not an e-mail address.", field="email")
    return value


def normalize_phone(value: str, region: str = "RU") -> str:
    """E.164, or :class:`InvalidInput` naming the ``phone`` field."""
    import phonenumbers  # here: only a phone number pays for it, not every start

    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("Not a phone number.", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("Not a valid phone number.", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def login_key(identifier: str, region: str = "RU") -> str:
    """The canonical form of what a person typed to log in (for lookups and limits)."""
    identifier = identifier.strip()
    if "@" in identifier:
        return identifier.lower()
    try:
        return normalize_phone(identifier, region)
    except InvalidInput:
        return identifier.lower()


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


TEXTS: dict[str, dict[str, str]] = {
    "code_subject": {"ru": "Код подтверждения", "en": "Confirmation code"},
    "code_body": {
        "ru": "Ваш код подтверждения: {code}. Он действует 10 минут.",
        "en": "Your confirmation code: {code}. It is valid for 10 minutes.",
    },
    "reset_subject": {"ru": "Восстановление пароля", "en": "Password reset"},
    "reset_body": {
        "ru": "Чтобы задать новый пароль, откройте ссылку (действует {minutes} мин.):\n{link}\n"
        "Если вы не просили сменить пароль, ничего не делайте.",
        "en": "To set a new password, open this link (valid for {minutes} min.):\n{link}\n"
        "If you did not ask for it, do nothing.",
    },
}


def text(key: str, language: str) -> str:
    texts = TEXTS[key]
    return texts.get(language, texts["en"])
