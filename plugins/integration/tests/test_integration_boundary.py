"""The local 1C server (``kabinet_integration_testing``) is out of the portal's runtime
code (issue 17, point 8): no module of the app imports it but the demo's set-up, and only
inside the function that runs it, so a portal that serves pages and syncs never loads it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import kabinet_integration

pytestmark = pytest.mark.smoke

PACKAGE = Path(kabinet_integration.__file__).resolve().parent
TESTING = "kabinet_integration_testing"


def _imports_of_testing(path: Path) -> list[tuple[int, bool]]:
    """(line, at module level) of each import of the testing package in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(n == TESTING or n.startswith(TESTING + ".") for n in names):
            found.append((node.lineno, id(node) in top))
    return found


def test_only_the_demo_imports_the_local_1c_and_only_when_it_runs() -> None:
    found = {
        path.relative_to(PACKAGE).as_posix(): imports
        for path in sorted(PACKAGE.rglob("*.py"))
        if (imports := _imports_of_testing(path))
    }
    assert list(found) == ["demo.py"]
    assert all(not at_top for _line, at_top in found["demo.py"])


def test_the_running_portal_never_loads_the_local_1c() -> None:
    # Every module of the app but the demo's, imported in a fresh interpreter.
    modules = [
        "kabinet_integration." + path.relative_to(PACKAGE).with_suffix("").as_posix()
        for path in sorted(PACKAGE.glob("*.py"))
        if path.stem not in ("__init__", "demo")
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({TESTING!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
    assert "kabinet_integration.onec_server" not in modules  # moved out, not copied
