"""The plugin contract stays honest: every hook is documented, tested and typed.

"Every hook" is read from the assembled host, not from a list kept by hand: the host's
own specifications (``kabinet.hookspecs``) and every specification an installed plugin
publishes through its ``hookspecs`` hook. A new hook, host or plugin, fails these tests
until ``docs/plugins.md`` has a heading ``### `name(arg, …)` `` for it (under "Hook
reference" for the host's, under "Hooks published by … `<plugin>`" for a plugin's) and
some test module under ``tests/`` or ``plugins/*/tests/`` has ``test_hook_<name>``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
import pytest

from kabinet import hookspecs
from kabinet.host import Host

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
HOST_SECTION = "Hook reference"
PUBLISHED_SECTION = "Hooks published by"
HOOK_HEADING = re.compile(r"^### `(?P<name>\w+)\((?P<args>[^`]*)\)`\s*$")


@dataclasses.dataclass(frozen=True)
class Hook:
    name: str
    args: tuple[str, ...]
    publisher: str
    """``host`` for kabinet.hookspecs, else the name of the plugin that publishes it."""
    function: Callable[..., Any]


@pytest.fixture(scope="module")
async def hooks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[list[Hook]]:
    """Every hook specification of the host built with all installed plugins enabled."""
    tmp = tmp_path_factory.mktemp("contract")
    settings = tmp / "settings.toml"
    settings.write_text("")
    env = {"KABINET__HOST__DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'k.sqlite3'}"}
    host = await Host.create(settings, env=env)
    try:
        yield await hooks_of(host)
    finally:
        await host.db.dispose()


async def hooks_of(host: Host) -> list[Hook]:
    publishers = {r.value.__name__: r.plugin.name for r in await host.plugins.acall("hookspecs")}
    found = []
    for name, caller in sorted(vars(host.plugins.pm.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.spec is None:
            continue
        spec = caller.spec
        module = spec.namespace
        publisher = "host" if module is hookspecs else publishers[module.__name__]
        found.append(Hook(name, (*spec.argnames, *spec.kwargnames), publisher, spec.function))
    return found


# -- (a) documented -----------------------------------------------------------------------


def documented(markdown: str) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """hook name -> [(the ``##`` section it is under, its documented arguments)]."""
    result: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    section = ""
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        if line.startswith("## "):
            section = line[3:].strip()
        match = HOOK_HEADING.match(line)
        if match:
            args = tuple(a.strip() for a in match["args"].split(",") if a.strip())
            result.setdefault(match["name"], []).append((section, args))
    return result


def doc_problems(hooks: Iterable[Hook], markdown: str) -> list[str]:
    """What is missing or wrong in the docs, one line per fault."""
    docs = documented(markdown)
    problems = []
    known = set()
    for hook in hooks:
        known.add(hook.name)
        wanted = f"### `{hook.name}({', '.join(hook.args)})`"
        if hook.publisher == "host":
            where = f"## {HOST_SECTION}"
            places = [a for s, a in docs.get(hook.name, []) if s.startswith(HOST_SECTION)]
        else:
            where = f"## {PUBLISHED_SECTION} … `{hook.publisher}`"
            places = [
                a
                for s, a in docs.get(hook.name, [])
                if s.startswith(PUBLISHED_SECTION) and f"`{hook.publisher}`" in s
            ]
        if not places:
            problems.append(f"{hook.name}: no heading {wanted} under {where}")
        elif any(args != hook.args for args in places):
            got = ", ".join(f"({', '.join(a)})" for a in places)
            problems.append(f"{hook.name}: documented with arguments {got}, expected {wanted}")
    for name in sorted(set(docs) - known):
        problems.append(f"{name}: documented but no such hook exists")
    return problems


async def test_every_hook_is_documented_with_its_exact_arguments(hooks: list[Hook]) -> None:
    assert DOCS.exists(), f"{DOCS.relative_to(ROOT)} is missing"
    assert doc_problems(hooks, DOCS.read_text(encoding="utf-8")) == []


def _noop() -> None:
    """A stand-in hook function."""


def test_doc_check_finds_missing_wrong_and_stale_headings() -> None:
    hooks = [
        Hook("routers", ("host",), "host", _noop),
        Hook("manifest", (), "host", _noop),
        Hook("notifications_channels", ("host", "person"), "notifications", _noop),
    ]
    good = (
        "## Hook reference\n### `routers(host)`\n### `manifest()`\n"
        "## Hooks published by the `notifications` plugin\n"
        "### `notifications_channels(host, person)`\n"
    )
    assert doc_problems(hooks, good) == []
    bad = (
        "## Hook reference\n### `routers(app)`\n### `retired()`\n"
        "```\n### `manifest()`\n```\n"
        "## Hooks published by the `integration` plugin\n"
        "### `notifications_channels(host, person)`\n"
    )
    assert doc_problems(hooks, bad) == [
        "routers: documented with arguments (app), expected ### `routers(host)`",
        "manifest: no heading ### `manifest()` under ## Hook reference",
        "notifications_channels: no heading ### `notifications_channels(host, person)` "
        "under ## Hooks published by … `notifications`",
        "retired: documented but no such hook exists",
    ]


# -- (b) tested ---------------------------------------------------------------------------


def suite_files(root: Path = ROOT) -> list[Path]:
    """Every Python file under tests/ and plugins/*/tests/."""
    files = sorted((root / "tests").rglob("*.py"))
    for folder in sorted(root.glob("plugins/*/tests")):
        files.extend(sorted(folder.rglob("*.py")))
    return files


def hook_test_names(files: Iterable[Path]) -> set[str]:
    """Names of the ``test_hook_*`` functions (and methods) defined in ``files``."""
    names = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_hook_"
            ):
                names.add(node.name)
    return names


def untested(hooks: Iterable[Hook], names: set[str]) -> list[str]:
    """Hooks with no ``test_hook_<name>`` nor ``test_hook_<name>_<anything>``."""
    return [
        f"{h.name} (published by {h.publisher})"
        for h in hooks
        if not any(
            n == f"test_hook_{h.name}" or n.startswith(f"test_hook_{h.name}_") for n in names
        )
    ]


async def test_every_hook_has_a_test(hooks: list[Hook]) -> None:
    assert untested(hooks, hook_test_names(suite_files())) == []


def test_test_finder_reads_functions_and_methods(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "plugins" / "depot" / "tests").mkdir(parents=True)
    (tmp_path / "tests" / "test_a.py").write_text(
        "async def test_hook_routers_claimed_twice(): ...\ndef test_hook_manifes(): ...\n"
    )
    (tmp_path / "plugins" / "depot" / "tests" / "test_b.py").write_text(
        "class TestDepot:\n    def test_hook_depot_carriers(self): ...\n"
    )
    names = hook_test_names(suite_files(tmp_path))
    hooks = [
        Hook("routers", ("host",), "host", _noop),
        Hook("manifest", (), "host", _noop),
        Hook("depot_carriers", ("host",), "depot", _noop),
    ]
    assert untested(hooks, names) == ["manifest (published by host)"]


# -- (c) typed and documented in the code -------------------------------------------------


def spec_problems(hook: Hook) -> list[str]:
    """A hook spec has a one-line docstring and annotations on every argument and return."""
    problems = []
    doc = hook.function.__doc__
    if not doc or not doc.strip():
        problems.append(f"{hook.name}: no docstring")
    elif "\n" in doc.strip():
        problems.append(f"{hook.name}: the docstring is more than one line")
    signature = inspect.signature(hook.function)
    for param in signature.parameters.values():
        if param.annotation is inspect.Parameter.empty:
            problems.append(f"{hook.name}: argument {param.name} has no type annotation")
    if signature.return_annotation is inspect.Signature.empty:
        problems.append(f"{hook.name}: no return annotation")
    return problems


def spec_functions(module: ModuleType) -> list[Hook]:
    """The hookspec-marked functions of ``module``."""
    marker = f"{hookspecs.PROJECT}_spec"
    return [
        Hook(name, tuple(inspect.signature(fn).parameters), "host", fn)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if hasattr(fn, marker)
    ]


def test_host_hookspecs_have_one_line_docstrings_and_full_annotations() -> None:
    specs = spec_functions(hookspecs)
    assert len(specs) >= 19
    assert [p for hook in specs for p in spec_problems(hook)] == []


async def test_published_hookspecs_have_one_line_docstrings_and_full_annotations(
    hooks: list[Hook],
) -> None:
    published = [h for h in hooks if h.publisher != "host"]
    assert [p for hook in published for p in spec_problems(hook)] == []


def test_spec_check_finds_missing_docstring_and_annotations() -> None:
    def bare(host, person: str):  # type: ignore[no-untyped-def]
        """Two lines
        of docstring."""

    def undocumented(host: Host) -> None:
        pass

    assert spec_problems(Hook("bare", ("host", "person"), "host", bare)) == [
        "bare: the docstring is more than one line",
        "bare: argument host has no type annotation",
        "bare: no return annotation",
    ]
    assert spec_problems(Hook("undocumented", ("host",), "host", undocumented)) == [
        "undocumented: no docstring"
    ]
