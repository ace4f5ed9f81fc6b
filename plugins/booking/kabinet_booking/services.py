"""The booking app's rules: a client's new-order requests, from a draft to the order.

``BookingService`` is published under :data:`BOOKING` at start-up; pages, the API, the
import, demo data and tests call it alike. It reads other apps only through their public
services: the organizations, counterparties and contracts a person may order for through
shipments' ``SHIPMENTS``/``FINANCE`` and companies' ``COMPANIES``, the vehicle types and
services through dictionaries' ``DICTIONARIES``.

States: ``draft`` (saved as the person works) → ``sent`` (waiting for the production
system) or ``under_review`` (by settings: the organization's managers first) →
``accepted`` (the order exists) or ``rejected`` (with the reason); a manager may
``return`` it with a comment, the client edits it and sends it again; the client may
cancel it until it is accepted or rejected. Every step is kept.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import msgspec
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import AllOrganizations, Principal
from kabinet.forms import FieldError, FormErrors
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.services import ServiceKey
from kabinet_booking import carriage
from kabinet_booking import models as m
from kabinet_booking.events import SUBMITTED, RequestSubmitted
from kabinet_booking.forms import Choices, OrderFields, check, order_fields, shown_only, summary
from kabinet_booking.settings import FieldRule, Settings
from kabinet_companies.services import COMPANIES, SYSTEM
from kabinet_dictionaries.services import DICTIONARIES
from kabinet_shipments.services import CONTRACTS as SHIPMENTS_CONTRACTS
from kabinet_shipments.services import FINANCE, SHIPMENTS
from kabinet_shipments.services import NotFound as NoContract

VIEW = "booking.requests.view"
CREATE = "booking.requests.create"
REVIEW = "booking.requests.review"
ACCEPT = "booking.requests.accept"
"""Staff: accept a request in the portal as the production system would (the demo)."""

STATES = ("draft", "sent", "under_review", "returned", "accepted", "rejected", "cancelled")
EDITABLE = frozenset({"draft", "returned"})
CANCELLABLE = frozenset({"draft", "sent", "under_review", "returned"})
OPEN = frozenset({"sent", "under_review"})
LISTED = 50
"""Contracts the form lists at most; a person with more finds the others by a search."""


class NotFound(FieldError):
    """No such request where the person may look (404: existence does not leak)."""

    status = 404


class Refused(FieldError):
    """The request's state does not allow it (409)."""

    status = 409


class Step(msgspec.Struct, kw_only=True):
    state: str
    person_id: int | None
    comment: str
    at: dt.datetime


class Attachment(msgspec.Struct, kw_only=True):
    id: int
    name: str
    size: int


class BookingRequest(msgspec.Struct, kw_only=True):
    """A new-order request as every channel shows it."""

    id: int
    organization_id: int
    counterparty_id: int | None
    contract_id: int | None
    person_id: int | None
    state: str
    portal_key: str
    fields: OrderFields
    summary: str
    reason: str
    order_id: int | None
    order_number: str
    order_key: str
    """The order's key in the production system (``Заявка_Key``)."""
    handed_over: bool
    """Queued for the production system through the integration app."""
    source: str
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None
    steps: list[Step] = msgspec.field(default_factory=list)
    attachments: list[Attachment] = msgspec.field(default_factory=list)


@dataclasses.dataclass
class Batch:
    """What many saves and sends in one go (an import) read once: the person's contracts,
    the production system's keys of each counterparty and contract, the author's contact."""

    contracts: list[Contract] | None = None
    keys: dict[tuple[int | None, int | None], tuple[str, str | None]] = dataclasses.field(
        default_factory=dict
    )
    contacts: dict[int | None, tuple[str, str]] = dataclasses.field(default_factory=dict)


class Contract(msgspec.Struct, kw_only=True, frozen=True):
    """A contract a person may order under, with its counterparty and organization."""

    id: int
    label: str
    number: str
    counterparty_id: int
    organization_id: int


def encode(fields: OrderFields) -> str:
    return msgspec.json.encode(fields).decode()


def decode(text: str) -> OrderFields:
    return msgspec.json.decode(text or "{}", type=OrderFields)


def as_request(row: Any) -> BookingRequest:
    return BookingRequest(
        id=row.id,
        organization_id=row.organization_id,
        counterparty_id=row.counterparty_id,
        contract_id=row.contract_id,
        person_id=row.person_id,
        state=row.state,
        portal_key=row.portal_key,
        fields=decode(row.fields),
        summary=row.summary,
        reason=row.reason,
        order_id=row.order_id,
        order_number=row.order_number,
        order_key=row.order_key,
        handed_over=bool(row.handed_over),
        source=row.source,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
    )


class BookingService:
    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def settings(self) -> Settings:
        return self.host.plugin_settings("booking", Settings)

    def rules(self) -> dict[str, FieldRule]:
        return self.settings.rules()

    def now(self) -> dt.datetime:
        return self.host.clock.now()

    def today(self) -> dt.date:
        return self.host.services.of(SHIPMENTS).today()

    # -- what a person may pick ----------------------------------------------------------

    async def contracts(
        self,
        principal: Principal,
        code: str = CREATE,
        *,
        search: str = "",
        ids: Collection[int] | None = None,
        limit: int | None = None,
    ) -> list[Contract]:
        """The contracts the person may order under (``code``: another permission, such as
        ``booking.requests.view``), by counterparty and number: shipments'
        ``contract_choices`` (``search``, ``ids`` and ``limit`` as there)."""
        found = await self.host.services.of(FINANCE).contract_choices(
            principal, code, search=search, ids=ids, limit=limit
        )
        return [
            Contract(
                id=k["id"],
                label=f"{k['counterparty_name']} — {k['number']}",
                number=k["number"],
                counterparty_id=k["counterparty_id"],
                organization_id=k["organization_id"],
            )
            for k in found
        ]

    async def dictionary(self, code: str, language: str = "ru") -> list[str]:
        """The titles of a dictionary's entries (vehicle types, services); none when the
        dictionary is missing."""
        try:
            items = await self.host.services.of(DICTIONARIES).choices(code, language=language)
        except FieldError:  # the dictionary was removed: nothing to choose
            return []
        return [title for _, title in items]

    async def choices(
        self,
        principal: Principal,
        language: str = "ru",
        *,
        contract_id: int | None = None,
        every: bool = False,
    ) -> Choices:
        """What the form offers: the first :data:`LISTED` contracts (``more_contracts``:
        there are others, found by a search), and ``contract_id`` where the person may
        order under it (the one chosen, checked); ``every``: all of them (an import)."""
        s = self.settings
        listed = await self.contracts(principal, limit=None if every else LISTED + 1)
        more = len(listed) > LISTED and not every
        listed = listed[:LISTED] if more else listed
        if contract_id is not None and all(c.id != contract_id for c in listed):
            listed += await self.contracts(principal, ids=[contract_id])
        return Choices(
            contracts={c.id: c.label for c in listed},
            more_contracts=more,
            vehicle_types=await self.dictionary(s.vehicle_dictionary, language),
            services=await self.dictionary(s.services_dictionary, language),
        )

    # -- reading -------------------------------------------------------------------------

    async def _orgs(self, principal: Principal, code: str) -> Any:
        return await self.host.access.organizations(principal, code)

    async def get(
        self, session: AsyncSession, principal: Principal, request_id: int, code: str = VIEW
    ) -> BookingRequest:
        orgs = await self._orgs(principal, code)
        row = (await session.execute(select(m.request).where(m.request.c.id == request_id))).first()
        if row is None or not (isinstance(orgs, AllOrganizations) or row.organization_id in orgs):
            raise NotFound("No such request.", "request_id")
        found = as_request(row)
        steps = await session.execute(
            select(m.step).where(m.step.c.request_id == request_id).order_by(m.step.c.id)
        )
        found.steps = [
            Step(state=s.state, person_id=s.person_id, comment=s.comment, at=s.at) for s in steps
        ]
        files = await session.execute(
            select(m.attachment).where(m.attachment.c.request_id == request_id)
        )
        found.attachments = [Attachment(id=f.id, name=f.name, size=f.size) for f in files]
        return found

    async def requests(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        state: str = "",
        organization: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[BookingRequest], int]:
        orgs = await self._orgs(principal, VIEW)
        query = select(m.request)
        if not isinstance(orgs, AllOrganizations):
            query = query.where(m.request.c.organization_id.in_(sorted(orgs)))
        if organization is not None:
            query = query.where(m.request.c.organization_id == organization)
        if state:
            query = query.where(m.request.c.state == state)
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = await session.execute(
            query.order_by(m.request.c.updated_at.desc(), m.request.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [as_request(r) for r in rows], int(total or 0)

    async def counts(self, session: AsyncSession, principal: Principal) -> dict[str, int]:
        """How many requests are in each state, where the person may look."""
        orgs = await self._orgs(principal, VIEW)
        query = select(m.request.c.state, func.count()).group_by(m.request.c.state)
        if not isinstance(orgs, AllOrganizations):
            if not orgs:
                return dict.fromkeys(STATES, 0)
            query = query.where(m.request.c.organization_id.in_(sorted(orgs)))
        found = dict.fromkeys(STATES, 0)
        for state, n in await session.execute(query):
            found[state] = int(n)
        return found

    # -- writing ---------------------------------------------------------------------------

    async def _step(
        self,
        session: AsyncSession,
        request_id: int,
        state: str,
        person: int | None,
        comment: str = "",
    ) -> None:
        await session.execute(
            insert(m.step).values(
                request_id=request_id, state=state, person_id=person, comment=comment, at=self.now()
            )
        )

    def _where(self, fields: OrderFields, contracts: Sequence[Contract]) -> Contract | None:
        return next((c for c in contracts if c.id == fields.contract_id), None)

    async def save(
        self,
        session: AsyncSession,
        principal: Principal,
        fields: OrderFields,
        *,
        request_id: int | None = None,
        organization_id: int | None = None,
        source: str = "form",
        batch: Batch | None = None,
    ) -> int:
        """Keep a draft (a new one, or the person's draft or returned request): only the
        field types are checked, so a half-filled form is kept as it is. ``batch``: what
        many saves and sends in one go read once (an import)."""
        rules = self.rules()
        fields = shown_only(fields, rules)
        if batch is not None and batch.contracts is None:
            batch.contracts = await self.contracts(principal)
        wanted = [] if fields.contract_id is None else [fields.contract_id]
        contracts = (
            batch.contracts
            if batch is not None and batch.contracts is not None
            else await self.contracts(principal, ids=wanted)
        )
        contract = self._where(fields, contracts)
        if fields.contract_id is not None and contract is None:
            raise FieldError("Choose one of the offered values.", "contract_id")
        now = self.now()
        values: dict[str, Any] = {
            "fields": encode(fields),
            "summary": summary(fields),
            "contract_id": contract.id if contract else None,
            "counterparty_id": contract.counterparty_id if contract else None,
            "updated_at": now,
        }
        if request_id is not None:
            found = await self.get(session, principal, request_id, CREATE)
            if found.state not in EDITABLE:
                raise Refused("This request can no longer be changed.", "request_id")
            if contract is not None and contract.organization_id != found.organization_id:
                raise FieldError("Choose one of the offered values.", "contract_id")
            await session.execute(
                update(m.request).where(m.request.c.id == request_id).values(**values)
            )
            return request_id
        org = contract.organization_id if contract else organization_id
        allowed = await self._orgs(principal, CREATE)
        if org is None:
            mine = sorted({c.organization_id for c in contracts}) or (
                sorted(allowed) if not isinstance(allowed, AllOrganizations) else []
            )
            if len(mine) != 1:
                raise FieldError("Fill this in.", "contract_id")
            org = mine[0]
        if not (isinstance(allowed, AllOrganizations) or org in allowed):
            raise NotFound("No such request.", "organization_id")
        new_id = await session.scalar(
            insert(m.request)
            .values(
                organization_id=org,
                person_id=principal.person_id,
                state="draft",
                portal_key=str(uuid.uuid4()),
                reason="",
                order_number="",
                order_key="",
                handed_over=False,
                source=source,
                created_at=now,
                **values,
            )
            .returning(m.request.c.id)
        )
        assert new_id is not None
        await self._step(session, int(new_id), "draft", principal.person_id)
        return int(new_id)

    async def send(
        self,
        session: AsyncSession,
        principal: Principal,
        request_id: int,
        choices: Choices,
        *,
        batch: Batch | None = None,
    ) -> BookingRequest:
        """Check the request by every rule and send it on: to the managers (by settings)
        or to the production system (the ``booking.request.submitted`` event)."""
        found = await self.get(session, principal, request_id, CREATE)
        if found.state not in EDITABLE:
            raise Refused("This request can no longer be changed.", "request_id")
        errors = check(found.fields, self.rules(), choices, today=self.today())
        if errors:
            raise FormErrors(errors)
        state = "under_review" if self.settings.review_by_managers else "sent"
        await self.move(session, found, state, principal.person_id)
        if state == "sent":
            await self.submit(session, found, principal, batch=batch)
        if batch is not None:
            return found  # as sent (a batch reads nothing back)
        return await self.get(session, principal, request_id, CREATE)

    async def move(
        self,
        session: AsyncSession,
        found: BookingRequest,
        state: str,
        person: int | None,
        comment: str = "",
        **values: Any,
    ) -> None:
        now = self.now()
        if state in OPEN and found.sent_at is None:
            values["sent_at"] = now
        done = await session.execute(
            update(m.request)
            .where(m.request.c.id == found.id, m.request.c.state == found.state)
            .values(state=state, updated_at=now, **values)
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Refused("This request was changed meanwhile; open it again.", "request_id")
        await self._step(session, found.id, state, person, comment)
        found.state = state

    async def submit(
        self,
        session: AsyncSession,
        found: BookingRequest,
        principal: Principal | None,
        *,
        batch: Batch | None = None,
    ) -> RequestSubmitted:
        """Hand the request over to the production system (the integration app's outbound
        contract, when it is installed and a source takes records) and publish
        ``booking.request.submitted``, both in the caller's transaction."""
        if batch is None:
            counterparty_key, contract_key = await self.keys(found)
        else:
            which = (found.counterparty_id, found.contract_id)
            if which not in batch.keys:
                batch.keys[which] = await self.keys(found)
            counterparty_key, contract_key = batch.keys[which]
        fields = order_fields(
            found.fields, self.rules(), counterparty_key=counterparty_key, contract_key=contract_key
        )
        if batch is None or found.person_id not in batch.contacts:
            name, email = await self.contact_of(found.person_id)
            if batch is not None:
                batch.contacts[found.person_id] = (name, email)
        else:
            name, email = batch.contacts[found.person_id]
        if not name and principal is not None and principal.person_id == found.person_id:
            name = principal.name
        handed = await carriage.hand_over(
            self.host,
            session,
            portal_key=found.portal_key,
            fields=fields,
            description=found.summary,
            contact_name=name,
            contact_email=email,
        )
        if handed:
            await session.execute(
                update(m.request).where(m.request.c.id == found.id).values(handed_over=True)
            )
            found.handed_over = True
        payload = RequestSubmitted(
            request_id=found.id,
            portal_key=found.portal_key,
            organization_id=found.organization_id,
            person_id=found.person_id,
            description=found.summary,
            fields=fields,
            contact_name=name,
            contact_email=email,
            handed_over=handed,
        )
        await self.host.events.publish(session, SUBMITTED, payload)
        return payload

    async def contact_of(self, person_id: int | None) -> tuple[str, str]:
        """The author's name and e-mail (``КонтактФИО``, ``КонтактEmail``: whoever sends it
        on, a manager after review included), from their account (the host's identity)."""
        if person_id is None:
            return "", ""
        account = await self.host.services.of(IDENTITY).get_account(person_id)
        if account is None:
            return "", ""
        return account.full_name or "", account.email or ""

    async def keys(self, found: BookingRequest) -> tuple[str, str | None]:
        """The production system's keys of the request's counterparty and contract."""
        if found.counterparty_id is None:
            raise FieldError("Fill this in.", "contract_id")
        party = await self.host.services.of(COMPANIES).counterparty(SYSTEM, found.counterparty_id)
        contract_key: str | None = None
        if found.contract_id is not None and found.person_id is not None:
            # The author's own view of the contract (as its card: shipments.contracts.view),
            # read in the request's unit of work.
            author = Principal(person_id=found.person_id, kind="person")
            rows = await self.host.services.of(FINANCE).contract_choices(
                author, SHIPMENTS_CONTRACTS, ids=[found.contract_id]
            )
            if not rows:
                raise NoContract(f"no contract {found.contract_id}")
            contract_key = rows[0]["external_id"]
        return party.external_id or "", contract_key

    async def cancel(
        self, session: AsyncSession, principal: Principal, request_id: int
    ) -> BookingRequest:
        found = await self.get(session, principal, request_id, CREATE)
        if found.state not in CANCELLABLE:
            raise Refused("This request can no longer be cancelled.", "request_id")
        await self.move(session, found, "cancelled", principal.person_id)
        return await self.get(session, principal, request_id, CREATE)

    async def create(
        self,
        session: AsyncSession,
        principal: Principal,
        fields: OrderFields,
        *,
        send: bool = True,
        source: str = "api",
        language: str = "ru",
    ) -> BookingRequest:
        """A new request in one call (the API, the import): checked by every rule first,
        so nothing is kept when it is refused."""
        choices = await self.choices(principal, language, contract_id=fields.contract_id)
        if send:
            errors = check(
                shown_only(fields, self.rules()), self.rules(), choices, today=self.today()
            )
            if errors:
                raise FormErrors(errors)
        request_id = await self.save(session, principal, fields, source=source)
        if send:
            return await self.send(session, principal, request_id, choices)
        return await self.get(session, principal, request_id, CREATE)

    async def organization_names(self, principal: Principal) -> list[tuple[int, str]]:
        """The person's organizations by name (companies' service)."""
        if principal.person_id is None:
            return []
        return await self.host.services.of(COMPANIES).organizations_of(principal.person_id)

    async def from_order(self, principal: Principal, order_id: int) -> OrderFields:
        """The fields of an existing order ("repeat this order"), read through the
        shipments service (404 where the person may not see it)."""
        from kabinet_shipments.services import NotFound as NoOrder

        try:
            row = await self.host.services.of(SHIPMENTS).order(principal, order_id)
        except NoOrder as exc:
            raise NotFound("No such request.", "from_order") from exc
        wanted = [] if row.contract_id is None else [row.contract_id]
        allowed = {c.id for c in await self.contracts(principal, ids=wanted)}
        return OrderFields(
            contract_id=row.contract_id if row.contract_id in allowed else None,
            origin=row.origin or "",
            destination=row.destination or "",
            cargo_name=row.cargo_name or "",
            cargo_weight=row.cargo_weight,
            cargo_volume=row.cargo_volume,
            cargo_places=row.cargo_places,
            shipper=row.shipper or "",
            consignee=row.consignee or "",
        )


BOOKING: ServiceKey[BookingService] = ServiceKey("booking", BookingService)
"""The app's service (``host.services.of(BOOKING)``), published at start-up."""
