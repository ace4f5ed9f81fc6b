"""The apps' boundaries, checked (issue 17, point 6).

An app (a distribution under ``plugins/``) may import:

- the standard library and third-party packages;
- the host's public API: ``kabinet`` modules, but not the tables of the host's built-in
  plugins (``kabinet.identity.models``, ``kabinet.roles.models``, ``kabinet.keycloak.models``)
  nor a private name (``_x``);
- another app only if it *requires* it (its manifest's ``requires`` and its
  ``pyproject.toml``'s dependencies both name it), and then only that app's public modules
  (:data:`PUBLIC_MODULES`), never its tables or pages.

:data:`KNOWN` lists the crossings that stand today, each to be removed as the app moves
onto the other's public module. The test fails on a new crossing and on a listed one that
is gone (so the list only shrinks).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parent.parent
APPS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
PUBLIC_MODULES = {"", "services", "events", "structs", "errors"}
"""What an app offers others: its package, services, events, structs, errors."""
HOST_TABLES = {"kabinet.identity.models", "kabinet.roles.models", "kabinet.keycloak.models"}

KNOWN: set[tuple[str, str]] = set()
# (app, "module imported"): crossings that stand today; remove a line when it is mended.
# None stands now: an app that needs another's data asks for a public name instead.


def requires(app: str) -> set[str]:
    """The plugins ``app`` requires, by its manifest and by its pyproject.toml."""
    plugin = (ROOT / "plugins" / app / f"kabinet_{app}" / "plugin.py").read_text()
    tree = ast.parse(plugin)
    manifest: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "requires":
            manifest |= {
                e.value
                for e in getattr(node.value, "elts", [])
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            }
    meta = tomllib.loads((ROOT / "plugins" / app / "pyproject.toml").read_text())
    deps = {
        d.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip()
        for d in meta["project"].get("dependencies", [])
    }
    declared = {d.removeprefix("kabinet-") for d in deps if d.startswith("kabinet-")}
    return manifest & declared


def imports(app: str) -> set[str]:
    """Every module the app's code imports (its tests and migrations left out)."""
    found: set[str] = set()
    package = ROOT / "plugins" / app / f"kabinet_{app}"
    for path in package.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found |= {
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                }
    return found


def crosses(allowed: set[str], app: str, module: str) -> bool:
    """Whether ``app``, requiring ``allowed``, crosses a boundary by importing ``module``."""
    top, _, rest = module.partition(".")
    if top == "kabinet":
        return module in HOST_TABLES or any(p.startswith("_") for p in rest.split(".") if p)
    if top.startswith("kabinet_") and top not in (f"kabinet_{app}", f"kabinet_{app}_testing"):
        # An app's own testing package (its local stand-ins, same distribution) is the app.
        other = top.removeprefix("kabinet_")
        return other not in allowed or rest.split(".")[0] not in PUBLIC_MODULES
    return False


def crossings(app: str) -> set[tuple[str, str]]:
    allowed = requires(app)
    return {(app, module) for module in imports(app) if crosses(allowed, app, module)}


def test_the_apps_are_known() -> None:
    assert APPS == [
        "booking",
        "companies",
        "dictionaries",
        "integration",
        "notifications",
        "shipments",
    ]


def test_no_app_reaches_past_another_apps_public_modules() -> None:
    found = set().union(*(crossings(app) for app in APPS))
    assert sorted(found - KNOWN) == [], "new crossings: import the public module instead"
    assert sorted(KNOWN - found) == [], "mended: remove these from KNOWN"


def test_the_checker_sees_a_crossing() -> None:
    # The rule itself: another app's table, an app not required, a private host name.
    assert crosses({"companies"}, "x", "kabinet_companies.models")
    assert crosses(set(), "x", "kabinet_shipments")
    assert crosses(set(), "x", "kabinet.cli._build")
    assert crosses(set(), "x", "kabinet.identity.models")
    assert not crosses({"companies"}, "x", "kabinet_companies.services")
    assert not crosses(set(), "x", "kabinet.pages")
    assert not crosses(set(), "x", "kabinet_x.models")
    assert not crosses(set(), "x", "kabinet_x_testing.server")
    assert crosses(set(), "x", "kabinet_y_testing")
