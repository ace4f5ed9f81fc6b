"""The forms of the companies pages, read by the page kit (:func:`kabinet.forms.read_form`).

Texts stay texts: the services check them (an ИНН, a phone, a password) and refuse with
the field named (:class:`~kabinet_companies.validation.CompanyError`, identity's
errors). An id is a whole number the kit checks (``Id``: a 4xx naming the field, never a
500); a checkbox is a ``bool`` (ticked or not).
"""

from __future__ import annotations

import msgspec

from kabinet.inputs import Id


class Switch(msgspec.Struct):
    """The header's organization switch: an id, or ``all`` (every company of mine)."""

    organization: str = ""
    next: str = ""


class Register(msgspec.Struct):
    full_name: str = ""
    email: str = ""
    phone: str = ""
    password: str = ""
    password2: str = ""
    consent: bool = False


class Confirm(msgspec.Struct):
    """A code of the confirmation page: ``purpose`` ``confirm_email`` or ``confirm_phone``;
    ``action`` ``resend`` asks for a new code."""

    purpose: str = ""
    action: str = ""
    code: str = ""


class Agree(msgspec.Struct):
    consent: bool = False


class AcceptInvitation(msgspec.Struct):
    token: str = ""
    phone: str = ""
    password: str = ""
    password2: str = ""
    consent: bool = False


class ConsentText(msgspec.Struct):
    text_ru: str = ""
    text_en: str = ""


class NewRequest(msgspec.Struct):
    """A person's request to join a company."""

    inn: str = ""
    kpp: str = ""
    company_name: str = ""
    comment: str = ""
    new_company: bool = False


class Organization(msgspec.Struct):
    """A new organization, or a card's changes (an empty ИНН or КПП: none)."""

    name: str = ""
    inn: str | None = None
    kpp: str | None = None


class MemberRoles(msgspec.Struct):
    roles: list[str] = []
    next: str = ""


class Invite(msgspec.Struct):
    email: str = ""
    full_name: str = ""
    role: str = "client"


class Manager(msgspec.Struct):
    """Assign (or with ``action`` ``remove``, unassign) a manager."""

    person_id: Id | None = None
    action: str = ""


class Move(msgspec.Struct):
    """Attach a counterparty to an organization."""

    organization_id: Id | None = None
    next: str = ""


class Decide(msgspec.Struct):
    """A link request's decision: ``accept`` (default), ``reject`` or ``review``."""

    decision: str = ""
    reason: str = ""
    organization_id: Id | None = None
    role: str = ""
    comment: str = ""
