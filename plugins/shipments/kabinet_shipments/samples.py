"""How the route matrix reaches the app's objects (``route_samples``): an order with a
stored document, an invoice and a contract in the asked organization, made through the
sinks like real data."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kabinet.routematrix import RouteSample, SampleRequest
from kabinet_companies.errors import Conflict
from kabinet_companies.services import COMPANIES, SYSTEM, make_inn
from kabinet_shipments import models as m
from kabinet_shipments.attached_files import apply_invoice_files, invoice_file_key
from kabinet_shipments.records import (
    AttachedFile,
    ContractRecord,
    DocumentLine,
    InvoiceFilesRecord,
    InvoiceRecord,
    OrderRecord,
)
from kabinet_shipments.services import EXPORTS, file_key
from kabinet_shipments.sinks import apply_contracts, apply_invoices, apply_orders

if TYPE_CHECKING:
    from kabinet.host import Host


async def ensure_counterparty(host: Host, organization_id: int) -> str:
    """An organization with that id and a counterparty of it (through the companies
    service); returns the counterparty's external id."""
    ext = f"sample-cp-{organization_id}"
    svc = host.services.of(COMPANIES)
    await svc.ensure_organization(organization_id, f"Образец {organization_id}")
    with contextlib.suppress(Conflict):  # made by an earlier sample
        await svc.create_counterparty(
            SYSTEM,
            name=f"Контрагент {ext}",
            inn=make_inn(organization_id),
            organization_id=organization_id,
            external_id=ext,
        )
    return ext


async def make_order(
    host: Host, organization_id: int, status: str = "in_progress"
) -> dict[str, Any]:
    """A new order (with a contract, a stored document and an invoice) in the organization."""
    cp = await ensure_counterparty(host, organization_id)
    tag = uuid.uuid4().hex[:10]
    today = host.clock.now().date()
    contract = ContractRecord(
        external_id=f"k-{tag}", counterparty=cp, number=f"K-{tag}", date=today
    )
    order = OrderRecord(
        external_id=f"o-{tag}",
        number=f"S-{tag}",
        date=dt.datetime.combine(today, dt.time(9)),
        counterparty=cp,
        contract=contract.external_id,
        status=status,  # type: ignore[arg-type]
        origin="Москва",
        destination="Казань",
        cost=Decimal(1000),
        cargo_name="Образец",
        documents=(DocumentLine(kind="ТН", number="1", file=f"f-{tag}", file_name="tn.pdf"),),
    )
    invoice = InvoiceRecord(
        external_id=f"i-{tag}",
        number=f"I-{tag}",
        date=today,
        counterparty=cp,
        contract=contract.external_id,
        order=order.external_id,
        amount=Decimal(1000),
    )
    async with host.db.session() as s:
        await apply_contracts(host, s, [contract])
        await apply_orders(host, s, [order])
        await apply_invoices(host, s, [invoice])
        print_form = AttachedFile(external_id=f"p-{tag}", name="Счет.pdf")
        await apply_invoice_files(
            host, s, [InvoiceFilesRecord(invoice=invoice.external_id, files=[print_form])]
        )
        ids = {
            "order_id": (
                await s.execute(
                    select(m.order.c.id).where(m.order.c.external_id == order.external_id)
                )
            ).scalar_one(),
            "contract_id": (
                await s.execute(
                    select(m.contract.c.id).where(m.contract.c.external_id == contract.external_id)
                )
            ).scalar_one(),
            "invoice_id": (
                await s.execute(
                    select(m.invoice.c.id).where(m.invoice.c.external_id == invoice.external_id)
                )
            ).scalar_one(),
        }
        ids["invoice_file_id"] = (
            await s.execute(
                select(m.invoice_file.c.id).where(m.invoice_file.c.invoice_id == ids["invoice_id"])
            )
        ).scalar_one()
        ids["document_id"] = (
            await s.execute(select(m.document.c.id).where(m.document.c.order_id == ids["order_id"]))
        ).scalar_one()
    await host.files.save(file_key(f"f-{tag}"), b"%PDF-1.4 sample", filename="tn.pdf")
    await host.files.save(invoice_file_key(f"p-{tag}"), b"%PDF-1.4 invoice", filename="Счет.pdf")
    return ids


async def order(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(params={"order_id": ids["order_id"]})


async def document(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(params={"order_id": ids["order_id"], "document_id": ids["document_id"]})


async def cancel_form(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(
        params={"order_id": ids["order_id"]}, form={"kind": "cancel", "comment": "Образец"}
    )


async def cancel_json(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(
        params={"order_id": ids["order_id"]}, json={"kind": "cancel", "comment": "Образец"}
    )


async def pending_request(host: Host, organization_id: int) -> int:
    """A client's cancel request, unanswered, on a new order of the organization."""
    from sqlalchemy import insert

    ids = await make_order(host, organization_id)
    now = host.clock.now()
    async with host.db.session() as s:
        found = await s.execute(
            insert(m.request)
            .values(
                order_id=ids["order_id"],
                kind="cancel",
                status="pending",
                changes={},
                comment="Образец",
                person_name="Образец",
                portal_key=m.new_portal_key(),
                created_at=now,
                updated_at=now,
            )
            .returning(m.request.c.id)
        )
        return int(found.scalar_one())


async def answer_form(host: Host, organization_id: int) -> SampleRequest:
    request_id = await pending_request(host, organization_id)
    return SampleRequest(
        params={"request_id": request_id}, form={"decision": "accepted", "comment": "Образец"}
    )


async def contract(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(params={"contract_id": ids["contract_id"]})


async def invoice(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(params={"invoice_id": ids["invoice_id"]})


async def invoice_file(host: Host, organization_id: int) -> SampleRequest:
    ids = await make_order(host, organization_id)
    return SampleRequest(
        params={"invoice_id": ids["invoice_id"], "file_id": ids["invoice_file_id"]}
    )


async def own_export(host: Host, organization_id: int, person_id: int) -> SampleRequest:
    """A finished export of the permitted person's view: only they may see or download it."""
    from kabinet.access import Principal

    await make_order(host, organization_id)
    exports = host.services.of(EXPORTS)
    me = Principal(person_id=person_id, kind="person")
    export_id = await exports.create(me, {}, "csv", send=False)
    await exports.run(export_id)
    return SampleRequest(params={"export_id": export_id})


SAMPLES = [
    RouteSample(path="/shipments/orders/{order_id:int}", make=order),
    RouteSample(path="/shipments/orders/{order_id:int}/documents/{document_id:int}", make=document),
    RouteSample(
        path="/shipments/orders/{order_id:int}/requests", make=cancel_form, methods=("POST",)
    ),
    RouteSample(
        path="/shipments/requests/{request_id:int}/answer", make=answer_form, methods=("POST",)
    ),
    RouteSample(path="/shipments/contracts/{contract_id:int}", make=contract),
    RouteSample(path="/shipments/invoices/{invoice_id:int}", make=invoice),
    RouteSample(path="/shipments/invoices/{invoice_id:int}/files/{file_id:int}", make=invoice_file),
    RouteSample(path="/api/shipments/orders/{order_id:int}", make=order),
    RouteSample(
        path="/api/shipments/orders/{order_id:int}/requests", make=cancel_json, methods=("POST",)
    ),
    RouteSample(path="/api/shipments/invoices/{invoice_id:int}", make=invoice),
    RouteSample(
        path="/api/shipments/invoices/{invoice_id:int}/files/{file_id:int}", make=invoice_file
    ),
    RouteSample(path="/api/shipments/contracts/{contract_id:int}", make=contract),
    RouteSample(path="/shipments/exports/{export_id:str}", make=own_export, owned=True),
    RouteSample(path="/shipments/exports/{export_id:str}/status", make=own_export, owned=True),
    RouteSample(path="/shipments/exports/{export_id:str}/file", make=own_export, owned=True),
]
