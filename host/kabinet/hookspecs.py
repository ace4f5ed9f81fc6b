"""The hooks a Kabinet plugin may implement.

Each hook is one small function: its docstring says when the host calls it and what it
returns. A plugin implements only the hooks it needs, with ``@hookimpl`` and any subset
of the arguments named here; implementations may be plain or ``async``. The host calls
them in a deterministic order (dependency order, then name) and knows which plugin gave
each result. ``docs/plugins.md`` documents every hook with its exact arguments, and a
test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from litestar.types import ControllerRouterHandler

    from kabinet.contrib import (
        Actor,
        Database,
        EntitySink,
        EventType,
        HealthCheck,
        Manifest,
        NavItem,
        Panel,
        Permission,
        Schedule,
        Subscription,
    )
    from kabinet.host import Host
    from kabinet.identity.messages import Message
    from kabinet.metrics import MetricsCollector
    from kabinet.personal import PersonalData
    from kabinet.routematrix import ManagerSample, RouteSample

PROJECT = "kabinet"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def manifest() -> Manifest:
    """Called first, before the plugin is enabled; returns who the plugin is and what it needs."""


@hookspec
def hookspecs() -> ModuleType | None:
    """Called at loading; returns a module of hook specifications this plugin publishes."""


@hookspec
def database() -> Database | None:
    """Called at start-up and by ``kabinet db``; returns the plugin's tables and migrations."""


@hookspec
def routers(host: Host) -> list[ControllerRouterHandler]:
    """Called when the web app is built; returns Litestar routers, controllers or handlers."""


@hookspec
def permissions() -> list[Permission]:
    """Called at start-up; returns the permissions the plugin checks, with default roles."""


@hookspec
def middleware(host: Host) -> list[Any]:
    """Called when the web app is built; returns Litestar middleware, outermost first."""


@hookspec
def navigation(host: Host) -> list[NavItem]:
    """Called when the web app is built; returns entries for the page shell's navigation."""


@hookspec
def panels(host: Host) -> list[Panel]:
    """Called when the web app is built; returns panels to show in other apps' pages."""


@hookspec
def template_dir() -> Path | None:
    """Called when the web app is built; returns the folder holding ``<plugin>/*.html``."""


@hookspec
def locale_dir() -> Path | None:
    """Called when the host is created; returns the folder of the plugin's translation catalogs."""


@hookspec
def static_dir() -> Path | None:
    """Called when the web app is built; returns the folder served at ``/static/<plugin>/``."""


@hookspec
def event_types() -> list[EventType]:
    """Called at start-up; returns the events the plugin publishes."""


@hookspec
def subscriptions(host: Host) -> list[Subscription]:
    """Called at start-up; returns handlers for events published by any plugin."""


@hookspec
def actors(host: Host) -> list[Actor]:
    """Called at start-up in web, worker and scheduler processes; returns background jobs."""


@hookspec
def schedules(host: Host) -> list[Schedule]:
    """Called at start-up; returns periodic jobs (cron or interval) that send an actor."""


@hookspec
def cli_commands() -> list[click.Command]:
    """Called when the ``kabinet`` command starts; returns click commands to add to it."""


@hookspec
def health_checks(host: Host) -> list[HealthCheck]:
    """Called by ``/ready``, ``/health/checks`` and ``kabinet check``; returns health checks."""


@hookspec
def demo_data(host: Host) -> None:
    """Called by ``kabinet demo`` after migrations, in dependency order; loads demo records."""


@hookspec
def startup(host: Host) -> None:
    """Called once when a web, worker or scheduler process has built the host."""


@hookspec
def shutdown(host: Host) -> None:
    """Called once when that process stops, in reverse dependency order."""


@hookspec
def managed_organizations(host: Host, person_id: int) -> set[int]:
    """Called when a person's access view is built; returns the organizations they manage."""


@hookspec
def organization_names(host: Host, ids: list[int]) -> dict[int, str]:
    """Called where the host shows organizations (API tokens); returns their names by id."""


@hookspec
def route_samples(host: Host) -> list[RouteSample | ManagerSample]:
    """Called by the route-matrix test; returns RouteSamples (and a ManagerSample)."""


@hookspec
def deliver_message(host: Host, message: Message) -> bool | None:
    """Called when the host sends a person a code or a link, until a plugin returns True."""


@hookspec
def entity_sinks(host: Host) -> list[EntitySink]:
    """Called by the integration app at start-up; returns the entities the plugin accepts."""


@hookspec
def metrics(host: Host) -> list[MetricsCollector]:
    """Called when the app is built with ``metrics_token`` set; returns scrape-time collectors."""


@hookspec
def personal_data(host: Host) -> PersonalData | None:
    """Called by retention, a person's download and removal; returns what it keeps of people."""
