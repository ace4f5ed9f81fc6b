"""ИНН and КПП checks, the length bound of a text field, and a form's refusal.

The app's error types live in the public :mod:`kabinet_companies.errors` (re-exported here).
"""

from __future__ import annotations

import re
from typing import Any

from kabinet.forms import FieldError, FormErrors
from kabinet.identity.errors import IdentityError
from kabinet_companies.errors import CompanyError, Conflict, Forbidden, NotFound

__all__ = [
    "CompanyError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "bounded",
    "clean_inn",
    "clean_kpp",
    "inn_valid",
    "make_inn",
    "refuse",
]

_W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_W12_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_W12_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KPP = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")


def bounded(value: str | None, column: Any, field: str) -> str:
    """``value`` stripped, or :class:`CompanyError` naming ``field`` when ``column`` (a
    ``String(n)`` of the app's tables) cannot hold it: nothing is cut short in silence."""
    text = (value or "").strip()
    limit = getattr(column.type, "length", None)
    if limit is not None and len(text) > limit:
        raise CompanyError("The value is too long for this field.", field)
    return text


def _check(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_valid(value: str) -> bool:
    """Length (10 for a company, 12 for a person or sole trader) and the check digits."""
    if not value.isdigit() or not value.isascii():
        return False
    if len(value) == 10:
        return _check(value, _W10) == int(value[9])
    if len(value) == 12:
        return _check(value, _W12_1) == int(value[10]) and _check(value, _W12_2) == int(value[11])
    return False


def clean_inn(value: str | None, field: str = "inn") -> str:
    """The ИНН without spaces, or :class:`CompanyError` naming ``field``."""
    inn = (value or "").strip().replace(" ", "")
    if not inn:
        raise CompanyError("ИНН is required", field)
    if not inn.isdigit() or len(inn) not in (10, 12):
        raise CompanyError("ИНН is 10 digits (a company) or 12 digits (a person)", field)
    if not inn_valid(inn):
        raise CompanyError("ИНН check digits do not match: check the number", field)
    return inn


def clean_kpp(value: str | None, field: str = "kpp") -> str | None:
    """The КПП (9 characters: 4 digits, 2 digits or capital letters, 3 digits) or ``None``."""
    kpp = (value or "").strip().upper().replace(" ", "")
    if not kpp:
        return None
    if not _KPP.match(kpp):
        raise CompanyError("КПП is 9 characters: NNNNPPNNN (P a digit or a capital letter)", field)
    return kpp


def make_inn(seed: int, length: int = 10) -> str:
    """A valid ИНН built from ``seed`` (demo data, tests and the benchmark)."""
    if length == 10:
        body = f"{seed % 10**9:09d}"
        return body + str(_check(body, _W10))
    body = f"{seed % 10**10:010d}"
    first = str(_check(body, _W12_1))
    return body + first + str(_check(body + first, _W12_2))


def refuse(errors: dict[str, str]) -> FormErrors:
    """Every field at fault at once (the form shows each next to its field): a message id
    by field name, as the page kit's :class:`~kabinet.forms.FormErrors`."""
    return FormErrors([FieldError(message, field) for field, message in errors.items()])


def new_account_errors(
    identity: Any, *, phone: str, password: str, password2: str, agreed: bool
) -> tuple[str | None, dict[str, str]]:
    """What registering and accepting an invitation both check of a new account's form:
    the phone (returned normalized, or ``None``), the password's rules and its repetition,
    the consent. Returns the phone and the errors by field."""
    from kabinet.identity.common import normalize_phone

    errors: dict[str, str] = {}
    phone_n = None
    try:
        phone_n = normalize_phone(phone)
    except IdentityError as exc:
        errors["phone"] = exc.message
    try:
        identity.check_password_rules(password)
    except IdentityError as exc:
        errors["password"] = exc.message
    if password != password2:
        errors["password2"] = "The passwords differ."
    if not agreed:
        errors["consent"] = "Agree to the processing of personal data to register."
    return phone_n, errors
