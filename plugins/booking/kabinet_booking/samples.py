"""How the route matrix reaches the app's objects (``route_samples``): a request (a
draft, so a write finds it editable) with an attachment, in the asked organization."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.routematrix import RouteSample, SampleRequest
from kabinet_booking import models as m
from kabinet_booking.services import BOOKING
from kabinet_companies.services import COMPANIES, SYSTEM

if TYPE_CHECKING:
    from kabinet.host import Host


def sample_inn(organization_id: int) -> str:
    """A valid 10-digit ИНН made from the organization's id (its check digit computed)."""
    base = f"93{organization_id % 10_000_000:07d}"
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    check = sum(int(d) * w for d, w in zip(base, weights, strict=True)) % 11 % 10
    return f"{base}{check}"


async def counterparty_of(host: Host, organization_id: int) -> int:
    """A counterparty of the organization known to the production system (by its key)."""
    companies = host.services.of(COMPANIES)
    await companies.ensure_organization(organization_id, f"Образец {organization_id}")
    inn = sample_inn(organization_id)
    found = await companies.find_counterparty(inn, None)
    if found is not None:
        return int(found.id)
    made = await companies.create_counterparty(
        SYSTEM,
        name=f"Заказчик {organization_id}",
        inn=inn,
        organization_id=organization_id,
        external_id=f"booking-sample-{organization_id}",
    )
    return made.id


async def make_request(host: Host, organization_id: int, state: str = "draft") -> int:
    """A request of the organization in ``state``, with one attached file."""
    import uuid

    from sqlalchemy import insert

    await host.services.of(COMPANIES).ensure_organization(
        organization_id, f"Образец {organization_id}"
    )
    party = await counterparty_of(host, organization_id) if state == "sent" else None
    now = host.clock.now()
    async with host.db.session() as session:
        request_id = await session.scalar(
            insert(m.request)
            .values(
                organization_id=organization_id,
                state=state,
                counterparty_id=party,
                portal_key=str(uuid.uuid4()),
                fields="{}",
                summary="Образец",
                reason="",
                order_number="",
                source="form",
                created_at=now,
                updated_at=now,
            )
            .returning(m.request.c.id)
        )
        assert request_id is not None
        key = f"booking/requests/{request_id}/sample.txt"
        await host.files.save(key, b"sample", filename="sample.txt")
        attachment_id = await session.scalar(
            insert(m.attachment)
            .values(request_id=request_id, key=key, name="sample.txt", size=6, created_at=now)
            .returning(m.attachment.c.id)
        )
    host.services.of(BOOKING)  # published: the routes read it
    return int(request_id) * 1_000_000 + int(attachment_id or 0)


async def _request(host: Host, organization_id: int) -> SampleRequest:
    both = await make_request(host, organization_id)
    return SampleRequest(params={"request_id": both // 1_000_000})


async def _file(host: Host, organization_id: int) -> SampleRequest:
    both = await make_request(host, organization_id)
    return SampleRequest(
        params={"request_id": both // 1_000_000, "attachment_id": both % 1_000_000}
    )


async def _review(host: Host, organization_id: int) -> SampleRequest:
    both = await make_request(host, organization_id, "under_review")
    return SampleRequest(
        params={"request_id": both // 1_000_000}, form={"decision": "return", "comment": "x"}
    )


async def _sent(host: Host, organization_id: int) -> SampleRequest:
    both = await make_request(host, organization_id, "sent")
    return SampleRequest(params={"request_id": both // 1_000_000})


async def _contracts(host: Host, organization_id: int) -> SampleRequest:
    """The contract search of the form, for a term found in the organization's names."""
    await counterparty_of(host, organization_id)
    return SampleRequest(query={"q": "Заказчик"})


def samples() -> list[RouteSample]:
    return [
        RouteSample(path="/booking/contracts", make=_contracts, addressed=False),
        RouteSample(path="/booking/{request_id:int}", make=_request),
        RouteSample(path="/booking/{request_id:int}/edit", make=_request),
        RouteSample(path="/booking/{request_id:int}/edit", make=_request, methods=("POST",)),
        RouteSample(path="/booking/{request_id:int}/cancel", make=_request, methods=("POST",)),
        RouteSample(path="/booking/{request_id:int}/review", make=_review, methods=("POST",)),
        RouteSample(path="/booking/{request_id:int}/accept", make=_sent, methods=("POST",)),
        RouteSample(path="/booking/{request_id:int}/files/{attachment_id:int}", make=_file),
        RouteSample(path="/api/booking/requests/{request_id:int}", make=_request),
        RouteSample(
            path="/api/booking/requests/{request_id:int}/cancel", make=_request, methods=("POST",)
        ),
    ]
