"""The forms of the identity pages, read by the page kit (:func:`kabinet.forms.read_form`).

Texts stay texts here: the service checks them and refuses with the field named.
"""

from __future__ import annotations

import msgspec

from kabinet.inputs import Id


class LoginForm(msgspec.Struct):
    login: str = ""
    password: str = ""
    next: str = "/"


class ResetForm(msgspec.Struct):
    login: str = ""


class NewPasswordForm(msgspec.Struct):
    token: str = ""
    password: str = ""
    password2: str = ""


class ProfileForm(msgspec.Struct):
    full_name: str = ""
    email: str | None = None
    phone: str | None = None
    language: str = ""
    timezone: str = ""


class PasswordForm(msgspec.Struct):
    current_password: str = ""
    new_password: str = ""
    new_password2: str = ""


class CodeForm(msgspec.Struct):
    purpose: str = ""
    code: str = ""


class TokenForm(msgspec.Struct):
    name: str = ""
    permissions: list[str] = []
    organizations: list[Id] = []


class AccountForm(msgspec.Struct):
    full_name: str = ""
    email: str | None = None
    phone: str | None = None
    password: str | None = None
    language: str | None = None


class StatusForm(msgspec.Struct):
    status: str = ""
