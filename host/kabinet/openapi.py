"""What the OpenAPI document says an API operation answers when it refuses.

Every refusal under ``/api/`` is RFC 9457 problem details (``application/problem+json``,
:class:`kabinet.problems.Problem`), whatever plugin the route belongs to, so the host
declares them for every route from what it knows of the route, when the app is built:

- 400: the operation takes parameters or a body (a value of the wrong type, a missing or
  unknown field, JSON that does not parse);
- 401: its access rule is not ``public`` (no credentials, or wrong ones);
- 403: its rule names a permission, or it is a machine's; or it writes (a browser's
  request without the CSRF token);
- 404: its path names an object (that does not exist, or that the caller may not see);
- 409, 422: it writes (a conflict with the object's state; data refused by the rules);
- 413: it takes a body (larger than the route accepts);
- 415: it takes a multipart body (a file of a kind it does not take).

A handler's own ``responses=`` (a status it answers that these rules do not foresee, such
as 429) are kept, and win over the host's for the same status. Success answers stay as
Litestar documents them from the handler's return type and ``media_type``.

The document also says what the host refuses before a handler runs, so a request that
fits the document is never refused as malformed (400): a whole number in the path or in
a query parameter fits an ``integer`` column (:mod:`kabinet.inputs`), and a body struct
that forbids unknown fields says ``additionalProperties: false``. 400 is for requests
that do not fit the document; data that fits it but that an app's rules refuse (an ИНН
whose check digit is wrong, a name already taken) is 422 or 409.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.constants import RESERVED_KWARGS
from litestar.enums import RequestEncodingType
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi import spec
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute
from litestar.typing import FieldDefinition

from kabinet.access import RULE_KEY, Machine, Permission, Public
from kabinet.inputs import INT_MAX, INT_MIN
from kabinet.problems import PROBLEM_JSON, Problem

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

DESCRIPTIONS = {
    400: "The request does not fit this operation: problem details naming each field.",
    401: "No credentials, or credentials that are not valid.",
    403: "The caller may not do this (a permission it lacks, or a missing CSRF token).",
    404: "No such object, or one the caller may not see.",
    409: "The object's state does not allow this now.",
    413: "The request body is larger than this operation accepts.",
    415: "A file of a kind this operation does not take.",
    422: "The data was refused by the app's rules: problem details naming each field.",
    429: "Too many requests; try again later (see Retry-After).",
}


CONTENT_KEY = "content_types"
"""A route answering files says in which types, as ``@get(..., content_types=(...))``: the
document then lists them for its success answer instead of JSON (``*/*`` for a file kept
in the type it was uploaded with)."""


@dataclasses.dataclass
class Operation(spec.Operation):
    """An API operation whose whole numbers in the path and the query are bounded as the
    host's input guard bounds them (an ``integer`` column's range)."""

    def __post_init__(self) -> None:
        for parameter in self.parameters or []:
            if isinstance(parameter, spec.Parameter) and parameter.param_in in ("path", "query"):
                _bound_integers(parameter.schema)

    @classmethod
    def answering(cls, status: int, content_types: Iterable[str]) -> Any:
        """A factory of operations whose ``status`` answer is a file in ``content_types``."""
        types = list(content_types)

        def make(**kwargs: Any) -> Operation:
            operation = cls(**kwargs)
            found = (operation.responses or {}).get(str(status))
            if isinstance(found, spec.OpenAPIResponse):
                binary = spec.Schema(type=spec.OpenAPIType.STRING, format=spec.OpenAPIFormat.BINARY)
                found.content = {t: spec.OpenAPIMediaType(schema=binary) for t in types}
            return operation

        return make


def _bound_integers(schema: Any) -> None:
    if not isinstance(schema, spec.Schema):
        return
    if schema.type == spec.OpenAPIType.INTEGER:
        low, high = schema.minimum, schema.maximum
        schema.minimum = INT_MIN if low is None else max(low, INT_MIN)
        schema.maximum = INT_MAX if high is None else min(high, INT_MAX)
    for option in [*(schema.one_of or []), *(schema.any_of or [])]:
        _bound_integers(option)


_BOUNDS = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minItems": "min_items",
    "maxItems": "max_items",
}
"""JSON Schema bounds msgspec checks, and the names Litestar's schema objects give them."""


class StrictStructs(StructSchemaPlugin):
    """msgspec structs documented with everything msgspec checks when it decodes them.

    Litestar documents a field's own bounds (``Annotated[str, Meta(max_length=…)]``) but
    not those inside it (the items of ``list[Id]``, an optional bounded number), so a
    number in the list beyond an ``integer`` was a 400 the document did not foresee; the
    bounds are taken from msgspec's own JSON Schema of the struct. A struct that refuses
    unknown fields (``forbid_unknown_fields=True``) says ``additionalProperties: false``.
    """

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Any:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if getattr(info, "forbid_unknown_fields", False):
            schema.additional_properties = False
        try:
            found = msgspec.json.schema(field_definition.type_)
        except (TypeError, ValueError):  # a field msgspec cannot describe: Litestar's alone
            return schema
        own = found.get("$defs", {}).get(found.get("$ref", "").rsplit("/", 1)[-1], {})
        for name, described in own.get("properties", {}).items():
            _add_bounds((schema.properties or {}).get(name), described)
        return schema


def _add_bounds(schema: Any, described: dict[str, Any]) -> None:
    """Copy the bounds of ``described`` (msgspec's) that ``schema`` (Litestar's) lacks."""
    if not isinstance(schema, spec.Schema):
        return
    for key, attribute in _BOUNDS.items():
        if key in described and getattr(schema, attribute) is None:
            setattr(schema, attribute, described[key])
    if isinstance(described.get("items"), dict):
        _add_bounds(schema.items, described["items"])
    options = [*(described.get("anyOf") or []), *(described.get("oneOf") or [])]
    for option in [*(schema.one_of or []), *(schema.any_of or [])]:
        if isinstance(option, spec.Schema):
            same = [o for o in options if o.get("type") == _type_name(option.type)]
            if len(same) == 1:
                _add_bounds(option, same[0])


def _type_name(value: Any) -> Any:
    return getattr(value, "value", value)


OPENAPI_PLUGINS = [StrictStructs()]
"""Litestar plugins for the app's OpenAPI document."""


def problem_response(status: int, description: str | None = None) -> ResponseSpec:
    """One refusal of an operation, documented as problem details."""
    return ResponseSpec(
        data_container=Problem,
        media_type=PROBLEM_JSON,
        description=description or DESCRIPTIONS.get(status, "Problem details."),
        generate_examples=False,
    )


def _takes_input(path: str, handler: HTTPRouteHandler) -> bool:
    """Whether the operation has parameters or a body (what Litestar validates: 400)."""
    names = set(handler.parsed_fn_signature.parameters) - set(handler.resolve_dependencies())
    return "{" in path or "data" in names or bool(names - RESERVED_KWARGS)


def error_statuses(path: str, handler: HTTPRouteHandler) -> set[int]:
    """The refusals an API operation may answer (see the module's docstring)."""
    rule = handler.opt.get(RULE_KEY)
    methods = set(handler.http_methods)
    writes = bool(methods & UNSAFE)
    data = handler.parsed_fn_signature.parameters.get("data")
    has_body = data is not None
    media = getattr(getattr(data, "kwarg_definition", None), "media_type", None)
    statuses: set[int] = set()
    if _takes_input(path, handler):
        statuses.add(400)
    if not isinstance(rule, Public):
        statuses.add(401)
    if isinstance(rule, (Permission, Machine)) or (writes and not isinstance(rule, Machine)):
        statuses.add(403)
    if "{" in path:
        statuses.add(404)
    if writes:
        statuses |= {409, 422}
    if has_body:
        statuses.add(413)
    if media == RequestEncodingType.MULTI_PART:
        statuses.add(415)
    return statuses


def align_options(routes: Iterable[Any]) -> None:
    """Make each path's ``OPTIONS`` answer list the methods the path has now.

    Litestar's generated ``OPTIONS`` handler reads the methods of the route it was made
    for; a router that registers a second method for a path makes a new route but keeps
    the first route's ``OPTIONS`` handler, whose ``Allow`` then omits the later methods
    (``Allow: GET, OPTIONS`` on a path that also takes ``POST``). The handler is pointed
    at the route that serves it.
    """
    for route in routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "OPTIONS" not in handler.http_methods or handler.opt.get(RULE_KEY) is not None:
                continue
            for cell in getattr(handler.fn, "__closure__", None) or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route


def declare_errors(handlers: Iterable[tuple[str, BaseRouteHandler]]) -> None:
    """Give every API handler of an app its problem-details responses and bounded numbers.

    ``handlers`` are the app's own (Litestar registers a copy of each handler, so the
    plugin's module-level handler is left as it was).
    """
    for path, handler in handlers:
        if not isinstance(handler, HTTPRouteHandler) or not path.startswith("/api/"):
            continue
        if handler.opt.get(RULE_KEY) is None:  # Litestar's own OPTIONS handler
            continue
        declared: dict[int, Any] = {
            s: problem_response(s) for s in sorted(error_statuses(path, handler))
        }
        handler.responses = {**declared, **(handler.responses or {})}
        content = handler.opt.get(CONTENT_KEY)
        handler.operation_class = (
            Operation.answering(handler.status_code, content) if content else Operation
        )
