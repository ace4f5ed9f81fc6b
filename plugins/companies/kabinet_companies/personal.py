"""What the companies app keeps about a person (the ``personal_data`` hook).

Their download lists their contact card, memberships, manager assignments, link requests
(with their history), invitations, registration and the consents they gave. Removing them
anonymises the contact card (kept: link requests point to it), deletes memberships,
manager assignments, invitations and the registration; link requests stay, their author
now the anonymised account; consent records (``companies_agreement``: the version
consented to, when, from where) stay with the text of that version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, or_, select, update

from kabinet.personal import PersonalData, Rows, rows
from kabinet_companies.models import (
    agreement,
    consent,
    contact,
    invitation,
    link_request,
    manager,
    membership,
    organization,
    registration,
    request_event,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

ERASED_NAME = "—"


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def personal_data(host: Host) -> PersonalData:
    async def export(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        async def of(query: Any) -> Rows:
            return rows(await s.execute(query))

        email = await s.scalar(select(contact.c.email).where(contact.c.person_id == person_id))
        mine = [invitation.c.person_id == person_id]
        if email:
            mine.append(func.lower(invitation.c.email) == email.lower())
        requests = select(link_request.c.id).where(link_request.c.person_id == person_id)
        return {
            "companies_contact": await of(
                select(
                    contact.c.full_name, contact.c.email, contact.c.phone, contact.c.created_at
                ).where(contact.c.person_id == person_id)
            ),
            "companies_membership": await of(
                select(
                    membership.c.organization_id,
                    organization.c.name.label("organization"),
                    membership.c.created_at,
                )
                .join(organization, organization.c.id == membership.c.organization_id)
                .where(membership.c.person_id == person_id)
                .order_by(membership.c.id)
            ),
            "companies_manager": await of(
                select(manager.c.organization_id, manager.c.assigned_at).where(
                    manager.c.person_id == person_id
                )
            ),
            "companies_link_request": await of(
                select(link_request)
                .where(link_request.c.person_id == person_id)
                .order_by(link_request.c.id)
            ),
            "companies_request_event": await of(
                select(request_event)
                .where(
                    or_(
                        request_event.c.request_id.in_(requests),
                        request_event.c.actor_id == person_id,
                    )
                )
                .order_by(request_event.c.id)
            ),
            "companies_invitation": await of(
                select(
                    invitation.c.email,
                    invitation.c.full_name,
                    invitation.c.organization_id,
                    invitation.c.role,
                    invitation.c.status,
                    invitation.c.created_at,
                    invitation.c.accepted_at,
                ).where(or_(*mine))
            ),
            "companies_agreement": await of(
                select(
                    agreement.c.version,
                    agreement.c.at,
                    agreement.c.address,
                    consent.c.text_ru,
                    consent.c.text_en,
                )
                .join(consent, consent.c.version == agreement.c.version)
                .where(agreement.c.person_id == person_id)
            ),
            "companies_registration": await of(
                select(registration.c.created_at, registration.c.confirmed_at).where(
                    registration.c.person_id == person_id
                )
            ),
        }

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        email = await s.scalar(select(contact.c.email).where(contact.c.person_id == person_id))
        mine = [invitation.c.person_id == person_id]
        if email:
            mine.append(func.lower(invitation.c.email) == email.lower())
        done = {
            "companies_invitation": _count(await s.execute(delete(invitation).where(or_(*mine))))
        }
        for table in (membership, manager, registration):
            result = await s.execute(delete(table).where(table.c.person_id == person_id))
            done[table.name] = _count(result)
        result = await s.execute(
            update(contact)
            .where(contact.c.person_id == person_id)
            .values(full_name=ERASED_NAME, email=None, phone=None, search="")
        )
        done["companies_contact"] = _count(result)
        from kabinet.roles.services import ROLES

        await host.services.of(ROLES).person_changed(person_id, s)  # memberships gave access
        return done

    return PersonalData(export=export, erase=erase)
