"""Entity sinks: batches from the production system applied in bulk, idempotently.

Each ``apply_*`` runs in the caller's transaction (the integration app's, or the demo
generator's) and follows the same steps: read what is stored for the whole batch in a few
queries, compare each record's digest with the stored one (identical: nothing is written),
insert the new ones in one statement, update the changed ones in one ``executemany``,
diff their lines (services, vehicles, documents) so an unchanged line is not rewritten,
and publish the events of real changes only. A record marked ``deleted`` is hidden; a
record whose counterparty or contract is unknown is refused by key with the reason.

Every reference a sink writes stays inside one counterparty (the production system's data
can point across: an invoice of one client naming another client's order would show that
order's number to the wrong company). A record is refused by key, with a reason naming
both counterparties, when it refers to an object of another counterparty: an order's or
an invoice's contract, an invoice's order, an order's document file listed by an order of
another counterparty, an answer naming another 1C request than the one the portal's
request is. The integration app sets a refused record aside in quarantine while the rest
of the batch is applied, and tries it again at the end of the run and in every later run:

- what is referred to comes in the same page: the sinks run in dependency order
  (contracts, orders, invoices), so it is there when the record is checked;
- it comes later (another page or run): an invoice whose order is not received yet is
  refused as "unknown order" (like an unknown contract) rather than stored without its
  link, and goes through, checked, once the order is there;
- it later moves to another counterparty (1C changes an order's counterparty or a
  contract's owner): the move is applied (1C is the authority on its own object, and the
  old company must stop seeing it), and the records of other counterparties that linked
  to it lose the link in the same transaction (``order_id`` or ``contract_id`` set to
  NULL, their digest emptied); received again, they are checked again and refused while
  they still point across. Requests made on a moved order stay with it (history).

Balances name only their contract (the register is asked for by contract), so they have
nothing to cross.

The sinks live in :mod:`~kabinet_shipments.sink_common` (what they share),
:mod:`~kabinet_shipments.sink_contracts` (contracts, balances),
:mod:`~kabinet_shipments.sink_orders` and :mod:`~kabinet_shipments.sink_invoices`
(invoices, answers); this module declares them (:func:`entity_sinks`) with what the
integration does after their batches (:data:`FOLLOW_UPS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kabinet.contrib import EntitySink
from kabinet_shipments.attached_files import (
    apply_invoice_files,
    apply_order_files,
    invoice_file_key,
)
from kabinet_shipments.records import (
    BalanceRecord,
    ContractRecord,
    InvoiceFilesRecord,
    InvoiceRecord,
    OrderFilesRecord,
    OrderRecord,
    RequestAnswerRecord,
)
from kabinet_shipments.services import file_key
from kabinet_shipments.sink_common import chunks, day_and_time, last_of, source_zone, utc
from kabinet_shipments.sink_contracts import apply_balances, apply_contracts
from kabinet_shipments.sink_invoices import (
    _publish_answer,
    apply_answers,
    apply_invoices,
    invoice_event,
)
from kabinet_shipments.sink_orders import apply_orders, order_digest

__all__ = [  # the sinks' functions, where the apps' demos, samples and tests find them
    "_publish_answer",
    "apply_answers",
    "apply_balances",
    "apply_contracts",
    "apply_invoice_files",
    "apply_invoices",
    "apply_order_files",
    "apply_orders",
    "chunks",
    "day_and_time",
    "entity_sinks",
    "invoice_event",
    "last_of",
    "order_digest",
    "source_zone",
    "utc",
]

SINKS = (
    (
        "contract",
        ContractRecord,
        apply_contracts,
        "external_id",
        ("companies.counterparty",),
        {"ru": "Договоры", "en": "Contracts"},
    ),
    (
        "order",
        OrderRecord,
        apply_orders,
        "external_id",
        ("shipments.contract",),
        {"ru": "Заявки на перевозку", "en": "Orders"},
    ),
    (
        "order_files",
        OrderFilesRecord,
        apply_order_files,
        "order",
        ("shipments.order",),
        {"ru": "Файлы заявок (версии)", "en": "Order files (versions)"},
    ),
    (
        "invoice",
        InvoiceRecord,
        apply_invoices,
        "external_id",
        ("shipments.contract", "shipments.order"),
        {"ru": "Счета", "en": "Invoices"},
    ),
    (
        "invoice_files",
        InvoiceFilesRecord,
        apply_invoice_files,
        "invoice",
        ("shipments.invoice",),
        {"ru": "Файлы счетов (печатные формы)", "en": "Invoice files (print forms)"},
    ),
    (
        "balance",
        BalanceRecord,
        apply_balances,
        "contract",
        ("shipments.contract",),
        {"ru": "Сальдо по договорам", "en": "Contract balances"},
    ),
    (
        "request_answer",
        RequestAnswerRecord,
        apply_answers,
        "portal_id",
        ("shipments.order",),
        {"ru": "Ответы на запросы", "en": "Answers to requests"},
    ),
)


BALANCE_SINK = "shipments.balance"


def _contracts_owed(records: Sequence[Any]) -> dict[str, list[str]]:
    """A contract's balance is stale after the contract, or an order or invoice of it."""
    return {BALANCE_SINK: [str(r.external_id) for r in records]}


def _contracts_named(records: Sequence[Any]) -> dict[str, list[str]]:
    return {BALANCE_SINK: [str(r.contract) for r in records if r.contract]}


def _order_files(records: Sequence[OrderRecord]) -> list[str]:
    """The files an order's documents name (a hidden order's are not fetched)."""
    return [d.file for r in records if not r.deleted for d in r.documents if d.file]


def _invoice_files(records: Sequence[InvoiceFilesRecord]) -> list[str]:
    return [f.external_id for r in records for f in r.files if not f.deleted]


FOLLOW_UPS: dict[str, dict[str, Any]] = {
    "contract": {"refreshes": _contracts_owed},
    "order": {"refreshes": _contracts_named, "files": _order_files, "file_key": file_key},
    "invoice": {"refreshes": _contracts_named},
    "invoice_files": {"files": _invoice_files, "file_key": invoice_file_key},
}
"""What the integration does for a sink after its batches (:class:`EntitySink`'s
``refreshes``, ``files`` and ``file_key``): balances after contracts, orders and invoices;
orders' document files and invoices' print forms fetched into the file storage (the
orders' attached files listed by ``shipments.order_files`` only keep their versions: the
documents name the files to fetch)."""


def entity_sinks() -> list[EntitySink]:
    return [
        EntitySink(
            name=f"shipments.{name}",
            struct=struct,
            apply=apply,
            key=key,
            depends_on=depends,
            title=title,
            **FOLLOW_UPS.get(name, {}),
        )
        for name, struct, apply, key, depends, title in SINKS
    ]
