"""Services plugins publish for each other, under typed keys.

A plugin that offers a service declares its key in its public module, beside the service::

    COMPANIES: ServiceKey[CompaniesService] = ServiceKey("companies", CompaniesService)

publishes it once (its ``startup`` hook, or on first use)::

    host.services.provide(COMPANIES, CompaniesService(host))

and a plugin that *requires* it reads it typed, so ``mypy --strict`` checks the call::

    companies = host.services.of(COMPANIES)   # a CompaniesService

In a route, the service comes by Litestar's dependency injection: the router declares it,
the handler names it as a parameter marked ``NamedDependency``::

    Router("/roles", dependencies={"roles": inject(ROLES)}, route_handlers=[...])

    @get("/")
    async def index(request: Request, roles: NamedDependency[RolesService]) -> Response: ...

Every route may also take ``host`` and ``session`` (the request's unit of work), which
the host provides to the whole app.

A plugin that only *may* find another (an optional hook, no ``requires``) asks with
:meth:`Services.find` and a key of its own whose type is a :class:`typing.Protocol` of what
it uses, so it imports nothing of that plugin.

``host.services["name"]`` (a plain dict) still works for code not moved yet; new code uses
keys (docs/plugins.md, "Services of other plugins").
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

__all__ = ["ServiceKey", "ServiceMissing", "Services", "inject"]

T = TypeVar("T")


class ServiceMissing(LookupError):
    """No plugin published the service: its plugin is not installed, disabled, or has not
    started (a CLI command or job that needs it must start the host first)."""


class ServiceKey(Generic[T]):
    """A service's name and type: ``ServiceKey("companies", CompaniesService)``."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: type[T] | Any) -> None:
        self.name = name
        self.kind = kind

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r}, {getattr(self.kind, '__name__', self.kind)!r})"


class Services(dict[str, Any]):
    """``host.services``: what plugins published, by name; typed through :class:`ServiceKey`."""

    def provide(self, key: ServiceKey[T], service: T) -> T:
        """Publish ``service`` under ``key`` (checked against the key's type); returns it."""
        _check(key, service)
        self[key.name] = service
        return service

    def of(self, key: ServiceKey[T]) -> T:
        """The service published under ``key``; :class:`ServiceMissing` names it if none."""
        found = self.get(key.name)
        if found is None:
            raise ServiceMissing(
                f"no service {key.name!r}: is the plugin that publishes it installed, "
                "enabled and required by yours (manifest requires), and the host started?"
            )
        _check(key, found)
        return cast("T", found)

    def find(self, key: ServiceKey[T]) -> T | None:
        """The service under ``key``, or ``None`` when no plugin published it."""
        found = self.get(key.name)
        return None if found is None else cast("T", found)


def inject(key: ServiceKey[T]) -> Any:
    """A Litestar dependency (``Provide``) of the service under ``key``, read from the
    request's host: ``dependencies={"roles": inject(ROLES)}`` on a router, and a parameter
    ``roles: NamedDependency[RolesService]`` on its handlers. A missing service is a 500 naming it
    (:class:`ServiceMissing`): a plugin's manifest must require what its routes inject."""
    from litestar import Request
    from litestar.di import Provide

    def service(request: Request[Any, Any, Any]) -> T:
        services: Services = request.app.state["kabinet.host"].services
        return services.of(key)

    service.__annotations__ = {"request": Request, "return": key.kind}
    service.__name__ = f"inject_{key.name.replace('.', '_')}"
    return Provide(service, sync_to_thread=False)


def _check(key: ServiceKey[Any], service: object) -> None:
    kind = key.kind
    checkable = isinstance(kind, type) and not getattr(kind, "_is_protocol", False)
    if checkable and not isinstance(service, kind):
        raise TypeError(
            f"service {key.name!r} is a {type(service).__name__}, its key says {kind.__name__}"
        )
