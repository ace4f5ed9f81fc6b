"""The route matrix: every route of the assembled app, checked against its access rule.

(The harness itself follows; :class:`RouteSample` is what plugins return from the
``route_samples`` hook.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kabinet.host import Host


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampleRequest:
    """What to send to reach one object: path parameters, and a body for writes."""

    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    query: Mapping[str, str] = dataclasses.field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RouteSample:
    """How to exercise one route: make an object in an organization, and the request for it."""

    path: str
    """The route's path as the app shows it (``route.path``), e.g. ``/api/x/{item_id:int}``."""
    make: Callable[[Host, int], Awaitable[SampleRequest]]
    """Creates an object in the given organization; returns the request that addresses it."""
    methods: tuple[str, ...] = ("GET",)
