"""The roles plugin's values: roles and grants as the service returns them, who makes a
change, and the built-in roles."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

BUILTIN_ROLES: Mapping[str, Mapping[str, Any]] = {
    "user": {"ru": "Пользователь", "en": "User", "assigned_only": False},
    "client": {"ru": "Клиент", "en": "Client", "assigned_only": False},
    "manager": {"ru": "Менеджер", "en": "Manager", "assigned_only": True},
    "admin": {"ru": "Администратор", "en": "Administrator", "assigned_only": False},
}
"""user: registered, no company yet; client: works for an organization; manager: staff
who serve the organizations assigned to them; admin: runs the portal."""


@dataclasses.dataclass(frozen=True)
class RoleInfo:
    id: int
    code: str
    name_ru: str
    name_en: str
    builtin: bool
    assigned_only: bool
    permissions: frozenset[str]

    def name(self, language: str) -> str:
        return self.name_ru if language == "ru" else self.name_en


@dataclasses.dataclass(frozen=True)
class GrantInfo:
    id: int
    person_id: int
    role: RoleInfo
    organization_id: int | None
    granted_by: int | None
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who makes a change, for the security log (``person_id=None``: the system, a CLI)."""

    person_id: int | None = None
    address: str = ""


SYSTEM = Actor()
