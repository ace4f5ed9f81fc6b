"""The values the companies services take and return (public to the apps that require
companies; ``kabinet_companies.services`` exports them too)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class Organization(msgspec.Struct, kw_only=True):
    id: int
    name: str
    inn: str | None
    kpp: str | None
    created_at: dt.datetime
    managers: list[int] = msgspec.field(default_factory=list)


class Counterparty(msgspec.Struct, kw_only=True):
    id: int
    organization_id: int | None
    external_id: str | None
    name: str
    full_name: str
    inn: str
    kpp: str | None
    address: str
    phone: str
    email: str
    source: str


class Membership(msgspec.Struct, kw_only=True):
    organization_id: int
    organization_name: str
    person_id: int
    roles: list[str]


class Contact(msgspec.Struct, kw_only=True):
    person_id: int
    full_name: str
    email: str | None
    phone: str | None
    memberships: list[Membership] = msgspec.field(default_factory=list)


class Page(msgspec.Struct, kw_only=True):
    total: int
    items: list[Any]
