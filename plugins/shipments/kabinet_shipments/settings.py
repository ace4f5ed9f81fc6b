"""The ``[shipments]`` settings section."""

from __future__ import annotations

from typing import Literal

import msgspec

EDITABLE: dict[str, Literal["date", "text", "int"]] = {
    "loading_date": "date",
    "delivery_planned": "date",
    "consignee": "text",
    "shipper": "text",
    "destination": "text",
    "cargo_places": "int",
    "comment": "text",
}
"""Fields a client may ask to change, with their type; settings choose among them."""

EditableField = Literal[
    "loading_date",
    "delivery_planned",
    "consignee",
    "shipper",
    "destination",
    "cargo_places",
    "comment",
]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[shipments]`` section."""

    page_size: int = 25
    """Rows per page of the registries by default."""
    page_sizes: list[int] = msgspec.field(default_factory=lambda: [25, 50, 100])
    """Page sizes a person may choose."""
    count_bound: int = 10_000
    """Tab counts are exact up to this many; above it they read "10 000+"."""
    source_timezone: str = "Europe/Moscow"
    """The production system's local time zone (its times carry none)."""
    editable_fields: list[EditableField] = msgspec.field(
        default_factory=lambda: ["loading_date", "delivery_planned", "consignee", "comment"]
    )
    """Fields of an order a client may ask to change."""
    export_limit: int = 5_000
    """Exports up to this many rows are made at once; larger ones by a background job
    whose progress the page shows, then a download link."""
    export_max_rows: int = 1_000_000
    """A background export stops after this many rows (an XLSX sheet holds 1,048,576)."""
    export_keep_hours: int = 24
    """How long a prepared export file is kept (then removed by ``shipments.exports_cleanup``)."""
