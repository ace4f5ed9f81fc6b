"""Helpers of the companies tests. People, staff and signed-in clients come from the
harness (``portal.person``, ``portal.signed_in``: kabinet.testing)."""

from __future__ import annotations

from kabinet.access import Principal


def who(person_id: int) -> Principal:
    """The person of account ``person_id`` as the services see them."""
    return Principal(person_id=person_id, name="x", kind="person")
