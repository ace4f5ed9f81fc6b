"""What other apps may join of the companies app's data: a public query contract.

Apps never import :mod:`kabinet_companies.models` (the boundary check,
``tests/test_boundaries.py``). Where an app's own statement must join a counterparty or its
organization in the database — the shipments registry scopes a person's orders by the
organizations they may see and sorts by the counterparty's name, on a benchmarked hot path
(``bench/registry.py``, ``docs/performance.md``) — it joins :data:`COUNTERPARTY_ROWS` and
:data:`ORGANIZATION_ROWS`, read-only selectables of the public columns, and its tables
reference a counterparty through :data:`COUNTERPARTY_KEY`. All three are importable from
:mod:`kabinet_companies.services`, and their names and columns change only with a
deprecation, like any public name.

Each selectable is a plain projection of one table: PostgreSQL and SQLite read it as the
table itself (the same plan, the same indexes), so the contract costs nothing.
"""

from __future__ import annotations

from sqlalchemy import Column, Subquery, select

from kabinet_companies.models import counterparty, organization

__all__ = ["COUNTERPARTY_KEY", "COUNTERPARTY_ROWS", "ORGANIZATION_ROWS"]

COUNTERPARTY_KEY: Column[int] = counterparty.c.id
"""A counterparty's key, for another app's ``ForeignKey(COUNTERPARTY_KEY, ...)``."""

COUNTERPARTY_ROWS: Subquery = select(
    counterparty.c.id,
    counterparty.c.organization_id,
    counterparty.c.external_id,
    counterparty.c.name,
    counterparty.c.inn,
    counterparty.c.kpp,
    counterparty.c.hidden,
).subquery("counterparties")
"""Counterparties: ``id``, ``organization_id`` (``NULL`` while not linked to one),
``external_id`` (the production system's id), ``name``, ``inn``, ``kpp``, ``hidden``."""

ORGANIZATION_ROWS: Subquery = select(organization.c.id, organization.c.name).subquery(
    "organizations"
)
"""Organizations (the portal's client companies): ``id``, ``name``."""
