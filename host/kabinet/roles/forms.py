"""The forms of the roles page, read by the page kit (:func:`kabinet.forms.read_form`).

Texts stay texts: the service checks codes and names and refuses with the field named.
"""

from __future__ import annotations

import msgspec

from kabinet.inputs import Id


class NewRole(msgspec.Struct):
    code: str = ""
    name_ru: str = ""
    name_en: str = ""
    assigned_only: bool = False


class Matrix(msgspec.Struct):
    p: list[str] = []
    """``<role id>:<permission>`` for each ticked box."""
    roles: list[Id] = []
    """The roles the page showed (one created meanwhile keeps its permissions)."""


class Rename(msgspec.Struct):
    name_ru: str = ""
    name_en: str = ""
    assigned_only: bool = False


class Grant(msgspec.Struct):
    role: str = ""
    organization: Id | None = None
    """Empty: globally (staff)."""
