"""What the shipments pages and API read: the registries' typed query parameters and the
forms' structs (read with :func:`kabinet.forms.read_form`).

The API's list endpoints declare each filter of the registry as a typed query parameter,
so the OpenAPI document shows them; their values go back into the registry's parser
(:func:`kabinet_shipments.registry.parse`), which checks what a type cannot say (a sort
of the list, a page size of the portal's, a cursor this list gave) and refuses with a
:class:`~kabinet_shipments.registry.QueryError` naming the parameter: a 400 problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from litestar.params import QueryParameter

from kabinet.inputs import INT_MAX
from kabinet_shipments.registry import (
    INVOICE_SORTS,
    INVOICE_TABS,
    ORDER_SORTS,
    ORDER_TABS,
)

LINE = r"^[^\x00-\x1f\x7f]*$"
"""A line of text: no control characters (which no column takes)."""
CURSOR = r"^[A-Za-z0-9_-]*$"
"""A page cursor: base64url without padding, as the list gives it."""
PAGE_SIZES = (25, 50, 100)
"""The page sizes the schema offers (the settings' ``page_sizes`` by default)."""


def _sorts(names: tuple[str, ...]) -> list[str]:
    return [s for name in names for s in (name, f"-{name}")]


OrderStatus = Annotated[
    str,
    QueryParameter(
        required=False,
        enum=[*ORDER_TABS, "cancelled"],
        description="Only orders in this status (a tab of the registry); empty: all.",
    ),
]
InvoiceStatus = Annotated[
    str,
    QueryParameter(
        required=False,
        enum=[*INVOICE_TABS, "cancelled"],
        description="Only invoices in this payment status (overdue: past due, not paid); "
        "empty: all.",
    ),
]
DateFrom = Annotated[
    dt.date | None,
    QueryParameter(required=False, description="From this day on (YYYY-MM-DD), inclusive."),
]
DateTo = Annotated[
    dt.date | None,
    QueryParameter(required=False, description="Up to this day (YYYY-MM-DD), inclusive."),
]
Place = Annotated[
    str,
    QueryParameter(
        required=False,
        max_length=200,
        pattern=LINE,
        description="A route point starting with this text (any case); empty: any.",
    ),
]
Search = Annotated[
    str,
    QueryParameter(
        required=False,
        max_length=200,
        pattern=LINE,
        description="Text found in the number, route or cargo (the invoice's number).",
    ),
]
OrganizationId = Annotated[
    int | None,
    QueryParameter(
        required=False, ge=1, le=INT_MAX, description="Only this organization's (its id)."
    ),
]
CounterpartyId = Annotated[
    int | None,
    QueryParameter(
        required=False, ge=1, le=INT_MAX, description="Only this counterparty's (its id)."
    ),
]
ContractId = Annotated[
    int | None,
    QueryParameter(required=False, ge=1, le=INT_MAX, description="Only under this contract."),
]
Late = Annotated[
    Literal["", "0", "1"],
    QueryParameter(
        required=False,
        description="1: only orders past their planned delivery and not done; 0 or empty: all.",
    ),
]
OrderSort = Annotated[
    str,
    QueryParameter(
        required=False,
        enum=_sorts(ORDER_SORTS),
        description="The column to sort by, with - for descending.",
    ),
]
InvoiceSort = Annotated[
    str,
    QueryParameter(
        required=False,
        enum=_sorts(INVOICE_SORTS),
        description="The column to sort by, with - for descending.",
    ),
]
Size = Annotated[
    int | None,
    QueryParameter(
        required=False,
        enum=list(PAGE_SIZES),
        description="Rows per page: one of the portal's page sizes (25, 50, 100 unless "
        "configured otherwise); empty: the portal's default.",
    ),
]
After = Annotated[
    str,
    QueryParameter(
        required=False,
        max_length=400,
        pattern=CURSOR,
        description="The page after this cursor (``next`` of a page this list answered).",
    ),
]
Before = Annotated[
    str,
    QueryParameter(
        required=False,
        max_length=400,
        pattern=CURSOR,
        description="The page before this cursor (``previous`` of a page this list answered).",
    ),
]
RequestStatus = Annotated[
    str,
    QueryParameter(
        required=False,
        description="Only requests in this status (pending, accepted, rejected, done); empty: all.",
    ),
]
DebtStart = Annotated[
    dt.date | None,
    QueryParameter(
        required=False, description="The period's first day (YYYY-MM-DD); default: this month's."
    ),
]
DebtEnd = Annotated[
    dt.date | None,
    QueryParameter(
        required=False, description="The period's last day (YYYY-MM-DD); default: today."
    ),
]


def query_params(values: Mapping[str, Any]) -> dict[str, str]:
    """Typed parameters as the registry's parser reads them (texts; empty ones left out)."""
    found: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        found[key] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return found


# -- forms -----------------------------------------------------------------------------------


class ExportForm(msgspec.Struct, kw_only=True):
    """An export asked for from the registry (``POST /shipments/exports``): the file's
    ``format`` and the registry's view, its URL parameters as the registry's parser reads
    them (it names a wrong one); cursors are not part of an export."""

    format: str = ""
    status: str = ""
    date_from: str = ""
    date_to: str = ""
    origin: str = ""
    destination: str = ""
    q: str = ""
    organization: str = ""
    counterparty: str = ""
    contract: str = ""
    late: str = ""
    sort: str = ""
    size: str = ""

    def view(self) -> dict[str, str]:
        """The registry's parameters sent (empty ones left out)."""
        found = msgspec.structs.asdict(self)
        return {k: v for k, v in found.items() if k != "format" and v}


class OrderRequestForm(msgspec.Struct, kw_only=True):
    """A request to change or cancel an order, from the order card. The changes asked
    for are the form's ``new_<field>`` keys (the order's editable fields, see
    :func:`changes_of`); the service checks every value and names the one it refuses."""

    kind: str = ""
    comment: str = ""


CHANGE_PREFIX = "new_"


def changes_of(form: Any) -> dict[str, str]:
    """The changes a request form asks for: ``new_<field>`` keys (the first value of each)."""
    found: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key.startswith(CHANGE_PREFIX):
            found.setdefault(key[len(CHANGE_PREFIX) :], value)
    return found
