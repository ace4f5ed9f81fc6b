"""What the shipments app accepts from the production system (the entity sinks' structs).

Field names are the portal's; the integration app maps the 1C reference configuration
(``Document_ЗаявкаНаПеревозку``, ``Document_СчетНаОплатуПокупателю``,
``Catalog_ДоговорыКонтрагентов``, the settlement register, ``Document_ЗапросКлиента``)
into them from its settings, including status values (``ВРаботе`` -> ``in_progress``).
References to other records are the production system's ids (``Ref_Key``): a
counterparty's ``external_id`` in the companies app, a contract's or an order's here.
Times without a zone are the production system's local time (``[shipments]
source_timezone``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Literal

import msgspec

OrderStatus = Literal["registered", "in_progress", "done", "cancelled"]
PaymentStatus = Literal["unpaid", "part_paid", "paid"]
ContractStatus = Literal["active", "suspended", "terminated"]
AnswerStatus = Literal["new", "accepted", "rejected", "done"]

ORDER_STATUSES: tuple[OrderStatus, ...] = ("registered", "in_progress", "done", "cancelled")
PAYMENT_STATUSES: tuple[PaymentStatus, ...] = ("unpaid", "part_paid", "paid")


class Record(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of the records: the digest identifies a record's content."""

    def digest(self) -> str:
        """The same content gives the same digest: an identical record writes nothing."""
        return hashlib.blake2b(msgspec.msgpack.encode(self), digest_size=16).hexdigest()


class ContractRecord(Record, frozen=True, kw_only=True):
    """``Catalog_ДоговорыКонтрагентов``."""

    external_id: str
    counterparty: str
    """The counterparty's ``external_id`` (``Owner_Key``)."""
    number: str
    date: dt.date
    name: str = ""
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    """``None``: open-ended (1C's ``0001-01-01``)."""
    status: ContractStatus = "active"
    currency: str = "RUB"
    credit_limit: Decimal = Decimal(0)
    deleted: bool = False


class ServiceLine(Record, frozen=True, kw_only=True):
    """A line of ``Услуги``."""

    name: str
    quantity: Decimal = Decimal(1)
    amount: Decimal = Decimal(0)


class VehicleLine(Record, frozen=True, kw_only=True):
    """A line of ``ТранспортныеСредства``."""

    kind: str = ""
    plate: str = ""
    driver: str = ""
    driver_phone: str = ""
    status: str = ""


class DocumentLine(Record, frozen=True, kw_only=True):
    """A line of ``Документы``; ``file`` is the production system's file id (``Файл_Key``)."""

    kind: str
    number: str = ""
    date: dt.date | None = None
    file: str | None = None
    file_name: str = ""


class OrderRecord(Record, frozen=True, kw_only=True):
    """``Document_ЗаявкаНаПеревозку`` with its tabular sections."""

    external_id: str
    number: str
    date: dt.datetime
    counterparty: str
    contract: str | None = None
    status: OrderStatus = "registered"
    origin: str = ""
    destination: str = ""
    loading_date: dt.datetime | None = None
    """``ДатаПогрузки`` with its time of day (local, as the other times); 00:00:00 is 1C's
    "a date only". The sink stores the local day and, where there is a time, the instant."""
    delivery_planned: dt.datetime | None = None
    delivery_actual: dt.datetime | None = None
    location: str = ""
    location_at: dt.datetime | None = None
    cost: Decimal = Decimal(0)
    currency: str = "RUB"
    cargo_name: str = ""
    cargo_weight: Decimal | None = None
    cargo_volume: Decimal | None = None
    cargo_places: int | None = None
    shipper: str = ""
    consignee: str = ""
    comment: str = ""
    services: tuple[ServiceLine, ...] = ()
    vehicles: tuple[VehicleLine, ...] = ()
    documents: tuple[DocumentLine, ...] = ()
    deleted: bool = False


class InvoiceRecord(Record, frozen=True, kw_only=True):
    """``Document_СчетНаОплатуПокупателю``."""

    external_id: str
    number: str
    date: dt.date
    counterparty: str
    contract: str | None = None
    order: str | None = None
    """The order's ``external_id`` (``Заявка_Key``; the empty GUID maps to ``None``)."""
    amount: Decimal
    paid: Decimal = Decimal(0)
    currency: str = "RUB"
    due_date: dt.date | None = None
    payment_status: PaymentStatus = "unpaid"
    deleted: bool = False


class AttachedFile(Record, frozen=True, kw_only=True):
    """A file attached to a document in the production system (without its content)."""

    external_id: str
    name: str = ""
    """The file name with its extension (``Счет СЧ-000001.pdf``)."""
    deleted: bool = False
    version: str = ""
    """The catalog item's ``DataVersion``: 1C moves it when the file's content is replaced
    under the same id, and a stored copy of another version is fetched again. Empty (a 1C
    that does not send it, rows stored before) never makes the portal fetch again."""


class InvoiceFilesRecord(Record, frozen=True, kw_only=True):
    """The files attached to an invoice (its print forms) as the production system lists
    them now (``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы`` by
    ``ВладелецФайла_Key``): the list replaces the one stored."""

    invoice: str
    """The invoice's ``external_id``."""
    files: list[AttachedFile] = msgspec.field(default_factory=list)


class OrderFilesRecord(Record, frozen=True, kw_only=True):
    """The files attached to an order as the production system lists them now
    (``Catalog_ЗаявкаНаПеревозкуПрисоединенныеФайлы`` by ``ВладелецФайла_Key``): the list
    replaces the one stored. The order's documents name the files the card shows; the
    listing gives each file's version, so a file 1C replaced is fetched again."""

    order: str
    """The order's ``external_id``."""
    files: list[AttachedFile] = msgspec.field(default_factory=list)


class BalanceRecord(Record, frozen=True, kw_only=True):
    """A row of the settlement register's balance: what the client owes on a contract."""

    contract: str
    balance: Decimal
    at: dt.datetime | None = None
    """When the production system computed it; the time of receipt when absent."""


class RequestAnswerRecord(Record, frozen=True, kw_only=True):
    """``Document_ЗапросКлиента`` read back: the answer to a client's request."""

    portal_id: str
    """``ИдентификаторПортала``: the portal's id of the request."""
    status: AnswerStatus
    answer: str = ""
    external_id: str | None = None
