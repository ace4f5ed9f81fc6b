"""Kabinet: a modular customer portal for freight and logistics companies.

The host's public API, what a plugin may import, is the names in ``__all__`` (importable
from ``kabinet`` itself or from the module each comes from) and the modules in
:data:`PUBLIC_MODULES`. Everything else in the ``kabinet`` package is internal and may
change in any release. A public name or hook changes only under the deprecation policy of
``docs/plugins.md``: it keeps working, with a ``DeprecationWarning`` naming what replaces
it, for at least one minor release before it goes. Names are imported on first use, so
``import kabinet`` stays cheap.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

PUBLIC_MODULES = (
    "kabinet.access",  # access rules of routes, the person behind a request
    "kabinet.clock",  # the injected clock
    "kabinet.commands",  # host_command, Failure: a plugin's CLI command
    "kabinet.contrib",  # what hooks return
    "kabinet.db",  # plugin_metadata, savepoint, ApartError; host.db's units and sessions
    "kabinet.errors",  # the faults start-up refuses with
    "kabinet.forms",  # the page kit: form bodies into structs, refusals naming a field
    "kabinet.hookspecs",  # every hook, hookimpl and hookspec
    "kabinet.host",  # Host
    "kabinet.htmx",  # the page kit: htmx requests, fragments, redirects
    "kabinet.i18n",  # labels, gettext, formatting in the person's language and zone
    "kabinet.lists",  # the page kit: search, sort whitelist, count and page of a list
    "kabinet.pages",  # the page shell: page, flash, principal_of, shell_of
    "kabinet.paging",  # the page kit: pagination
    "kabinet.personal",  # the personal_data hook: periods, a person's rows, their removal
    "kabinet.routematrix",  # route samples for the route-matrix test
    "kabinet.services",  # services plugins publish for each other, under typed keys
    "kabinet.testing",  # the pytest plugin (-p kabinet.testing) and its portal
)
"""Modules whose documented names are public, besides the names below."""

_PUBLIC: dict[str, str] = {
    # the host and its hooks
    "Host": "kabinet.host",
    "hookimpl": "kabinet.hookspecs",
    "hookspec": "kabinet.hookspecs",
    # what hooks return
    "Actor": "kabinet.contrib",
    "Database": "kabinet.contrib",
    "DefaultTemplate": "kabinet.contrib",
    "EntitySink": "kabinet.contrib",
    "EventType": "kabinet.contrib",
    "HealthCheck": "kabinet.contrib",
    "Manifest": "kabinet.contrib",
    "NavItem": "kabinet.contrib",
    "NoSettings": "kabinet.contrib",
    "NotificationType": "kabinet.contrib",
    "Panel": "kabinet.contrib",
    "Permission": "kabinet.contrib",
    "Recipients": "kabinet.contrib",
    "Schedule": "kabinet.contrib",
    "SinkResult": "kabinet.contrib",
    "Subscription": "kabinet.contrib",
    # access rules and the person behind a request
    "AllOrganizations": "kabinet.access",
    "Principal": "kabinet.access",
    "machine": "kabinet.access",
    "permission": "kabinet.access",
    "public": "kabinet.access",
    "signed_in": "kabinet.access",
    # tables and transactions
    "ApartError": "kabinet.db",
    "plugin_metadata": "kabinet.db",
    "savepoint": "kabinet.db",
    # pages in the shell
    "flash": "kabinet.pages",
    "page": "kabinet.pages",
    "principal_of": "kabinet.pages",
    "safe_next": "kabinet.pages",
    "shell_of": "kabinet.pages",
    # the page kit
    "FieldError": "kabinet.forms",
    "FormErrors": "kabinet.forms",
    "FormView": "kabinet.forms",
    "form_view": "kabinet.forms",
    "read_form": "kabinet.forms",
    "PageNo": "kabinet.paging",
    "Paging": "kabinet.paging",
    "PerPage": "kabinet.paging",
    "ServiceKey": "kabinet.services",
    "ServiceMissing": "kabinet.services",
    "inject": "kabinet.services",
    "is_htmx": "kabinet.htmx",
    "redirect": "kabinet.htmx",
    "wants_fragment": "kabinet.htmx",
    # texts
    "gettext_": "kabinet.i18n",
    "localized": "kabinet.i18n",
    "ngettext_": "kabinet.i18n",
    # time
    "Clock": "kabinet.clock",
    "FrozenClock": "kabinet.clock",
    "SystemClock": "kabinet.clock",
    # faults
    "PluginError": "kabinet.errors",
    "SettingsError": "kabinet.errors",
    "StartupError": "kabinet.errors",
    # the route matrix's samples
    "ManagerSample": "kabinet.routematrix",
    "RouteSample": "kabinet.routematrix",
    "SampleRequest": "kabinet.routematrix",
}

_DEPRECATED: dict[str, tuple[str, str, str]] = {}
"""Old public name -> (module, name it now is, the version it was deprecated in): still
importable from ``kabinet``, with a ``DeprecationWarning`` (see docs/plugins.md)."""

__all__ = [
    "PUBLIC_MODULES",
    "Actor",
    "AllOrganizations",
    "ApartError",
    "Clock",
    "Database",
    "DefaultTemplate",
    "EntitySink",
    "EventType",
    "FieldError",
    "FormErrors",
    "FormView",
    "FrozenClock",
    "HealthCheck",
    "Host",
    "ManagerSample",
    "Manifest",
    "NavItem",
    "NoSettings",
    "NotificationType",
    "PageNo",
    "Paging",
    "Panel",
    "PerPage",
    "Permission",
    "PluginError",
    "Principal",
    "Recipients",
    "RouteSample",
    "SampleRequest",
    "Schedule",
    "ServiceKey",
    "ServiceMissing",
    "SettingsError",
    "SinkResult",
    "StartupError",
    "Subscription",
    "SystemClock",
    "__version__",
    "flash",
    "form_view",
    "gettext_",
    "hookimpl",
    "hookspec",
    "inject",
    "is_htmx",
    "localized",
    "machine",
    "ngettext_",
    "page",
    "permission",
    "plugin_metadata",
    "principal_of",
    "public",
    "read_form",
    "redirect",
    "safe_next",
    "savepoint",
    "shell_of",
    "signed_in",
    "wants_fragment",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    if name in _DEPRECATED:
        module, new, since = _DEPRECATED[name]
        warnings.warn(
            f"kabinet.{name} is deprecated since {since}: use {module}.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), new)
    raise AttributeError(f"module 'kabinet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from kabinet.access import (
        AllOrganizations,
        Principal,
        machine,
        permission,
        public,
        signed_in,
    )
    from kabinet.clock import Clock, FrozenClock, SystemClock
    from kabinet.contrib import (
        Actor,
        Database,
        DefaultTemplate,
        EntitySink,
        EventType,
        HealthCheck,
        Manifest,
        NavItem,
        NoSettings,
        NotificationType,
        Panel,
        Permission,
        Recipients,
        Schedule,
        SinkResult,
        Subscription,
    )
    from kabinet.db import ApartError, plugin_metadata, savepoint
    from kabinet.errors import PluginError, SettingsError, StartupError
    from kabinet.forms import FieldError, FormErrors, FormView, form_view, read_form
    from kabinet.hookspecs import hookimpl, hookspec
    from kabinet.host import Host
    from kabinet.htmx import is_htmx, redirect, wants_fragment
    from kabinet.i18n import gettext_, localized, ngettext_
    from kabinet.pages import flash, page, principal_of, safe_next, shell_of
    from kabinet.paging import PageNo, Paging, PerPage
    from kabinet.routematrix import ManagerSample, RouteSample, SampleRequest
    from kabinet.services import ServiceKey, ServiceMissing, inject
