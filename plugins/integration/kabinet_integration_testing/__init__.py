"""A local 1C:Enterprise server for tests, benches and the demo; not the app's runtime code.

It speaks the reference configuration (``reference/onec-transport.md``) over the real
wire format (``reference/wire-formats.md`` §1): the OData JSON envelope with
``odata.metadata``, Int64 as strings, Cyrillic names in percent-encoded paths, ``$filter``
(``eq ne gt ge lt le and or not``, ``guid'…'``/``datetime'…'`` literals) with ``$select``,
``$orderby``, ``$top``, ``$skip``, the bound ``Balance`` function, ``odata.error`` bodies
with string codes, HTTP Basic, Atom without ``$format=json``, ``POST`` creating a document
(201 and ``Location``), and the exchange-plan HTTP service (``changes``/``ack``). Every
write records a row in the change register and a change for the exchange node.

A test can rename sets, fields and values (:class:`Renaming`), change records between
runs (:meth:`OneCData.put`, :meth:`OneCData.delete`) and inject faults (:class:`Fault`).

Its parts: :mod:`.odata` (set names, ``$filter``, ``$select``, error bodies), :mod:`.data`
(the infobase), :mod:`.generator` (realistic data), :mod:`.server` (HTTP). The package
ships beside ``kabinet_integration`` in the same wheel, for ``kabinet demo``, but nothing
the running portal imports reaches it (``tests/test_integration_boundary.py`` checks);
see docs/integration.md, "The local 1C".
"""

from __future__ import annotations

from kabinet_integration_testing.data import OneCData, Renaming, put_raw
from kabinet_integration_testing.generator import (
    Generated,
    attach,
    contract,
    counterparty,
    generate,
    inn10,
    invoice,
    order,
    print_form,
    replace_file,
)
from kabinet_integration_testing.odata import (
    BALANCE,
    CHANGES,
    EMPTY,
    FILES,
    INVOICE_FILES,
    INVOICES,
    ORDERS,
    REQUESTS,
    SETS,
    ODataError,
    parse_filter,
    select_fields,
)
from kabinet_integration_testing.server import Fault, OneCServer, serve, wait_until

__all__ = [
    "BALANCE",
    "CHANGES",
    "EMPTY",
    "FILES",
    "INVOICES",
    "INVOICE_FILES",
    "ORDERS",
    "REQUESTS",
    "SETS",
    "Fault",
    "Generated",
    "ODataError",
    "OneCData",
    "OneCServer",
    "Renaming",
    "attach",
    "contract",
    "counterparty",
    "generate",
    "inn10",
    "invoice",
    "order",
    "parse_filter",
    "print_form",
    "put_raw",
    "replace_file",
    "select_fields",
    "serve",
    "wait_until",
]
