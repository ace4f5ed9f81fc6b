"""The ``[booking]`` section of settings.toml, validated when the portal starts.

Which fields the new-order form shows, which are required and which field of the order
each goes to are settings (``[booking.fields.<field>]``), not the program. ``order_field``
is the order's field under its portal name (the fields of the shipments app's
``shipments.order`` sink); the integration app's mapping (``[integration.sources.<name>.
fields.order]``) names it in 1C, so the defaults reach the reference configuration's
``Document_ЗаявкаНаПеревозку`` attributes (``origin`` → ``ПунктОтправления``,
``cargo_weight`` → ``ГрузВес``…) and a renamed configuration is followed by settings alone.
A field with no order field (``order_field = ""``: packaging, temperature, dangerous
goods, vehicle type, time windows, contacts in the reference) is written into the order's
comment in a readable form, so nothing the client entered is lost.
"""

from __future__ import annotations

import msgspec


class FieldRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How one field of the form behaves."""

    shown: bool = True
    required: bool = False
    order_field: str = ""
    """The order's field it goes to (portal name); empty: written into the comment."""


FIELDS: tuple[str, ...] = (
    "contract_id",
    "origin",
    "origin_contact",
    "destination",
    "destination_contact",
    "loading_date",
    "loading_from",
    "loading_to",
    "delivery_date",
    "cargo_name",
    "cargo_weight",
    "cargo_volume",
    "cargo_places",
    "packaging",
    "temperature",
    "danger_class",
    "vehicle_type",
    "services",
    "shipper",
    "shipper_contact",
    "consignee",
    "consignee_contact",
    "comment",
)
"""Every field of the form, in the form's order (the API's and the import's too)."""


def default_rules() -> dict[str, FieldRule]:
    """The order fields of the reference configuration's attributes (in brackets); what it
    has no attribute for goes to the comment (packaging, temperature, dangerous goods,
    vehicle type, time windows, contacts)."""
    order = {
        "contract_id": "contract",  # Договор_Key
        "origin": "origin",  # ПунктОтправления
        "destination": "destination",  # ПунктНазначения
        "loading_date": "loading_date",  # ДатаПогрузки (with the window's start)
        "delivery_date": "delivery_planned",  # ДатаДоставкиПлан
        "cargo_name": "cargo_name",  # ГрузНаименование
        "cargo_weight": "cargo_weight",  # ГрузВес
        "cargo_volume": "cargo_volume",  # ГрузОбъем
        "cargo_places": "cargo_places",  # ГрузМест
        "shipper": "shipper",  # Грузоотправитель
        "consignee": "consignee",  # Грузополучатель
        "comment": "comment",  # Комментарий
    }
    required = {"contract_id", "origin", "destination", "loading_date", "cargo_name"}
    return {
        name: FieldRule(required=name in required, order_field=order.get(name, ""))
        for name in FIELDS
    }


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every field has a default, so the app runs with no section at all; a typo in a key
    is refused at start-up with the closest known key suggested."""

    review_by_managers: bool = False
    """``true``: a sent request waits for the organization's managers, who accept or
    return it; ``false``: it goes straight to the production system."""
    fields: dict[str, FieldRule] = msgspec.field(default_factory=dict)
    """Changes of :func:`default_rules` by field name (the rest keep their defaults)."""
    vehicle_dictionary: str = "booking_vehicle_types"
    """The dictionary (dictionaries app) listing vehicle types."""
    services_dictionary: str = "booking_services"
    """The dictionary listing additional services."""
    page_size: int = 50
    """Requests a page of "My requests" shows."""
    import_max_rows: int = 5000
    """Rows an imported file may hold."""
    idempotency_days: int = 7
    """How long an API answer is kept for a retry with the same ``Idempotency-Key``."""

    def rules(self) -> dict[str, FieldRule]:
        """Every field's rule: the defaults with this section's changes."""
        found = default_rules()
        for name, rule in self.fields.items():
            if name not in found:
                raise ValueError(f"booking.fields: unknown field {name!r}")
            found[name] = rule
        return found
