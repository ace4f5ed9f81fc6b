"""Deprecated since 0.1: the Keycloak plugin's services are in
:mod:`kabinet.keycloak.services` (the same file name as every app's). Each name read from
here still resolves, with a ``DeprecationWarning`` naming its new place."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = ("KEYCLOAK", "KeycloakService", "keycloak_service", "login_redirect")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"kabinet.keycloak.service.{name} is deprecated since 0.1: "
            f"use kabinet.keycloak.services.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("kabinet.keycloak.services"), name)
    raise AttributeError(f"module 'kabinet.keycloak.service' has no attribute {name!r}")
