"""Finding, ordering and validating plugins, and calling their hooks.

Plugins are found through entry points in the group ``kabinet.plugins`` and registered
with a ``pluggy.PluginManager``. The host's own features are built-in plugins registered
the same way. Every fault found while loading is a :class:`~kabinet.errors.PluginError`
naming the plugin, its entry point and the fault; nothing starts half-validated.

Hooks are called plugin by plugin, in dependency order then by name, so the host knows
which plugin returned what (to name it in an error) and the order never depends on the
order of installation. Coroutine results are awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import difflib
import functools
import heapq
import importlib
import inspect
import re
from collections.abc import Callable, Coroutine, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

import kabinet
from kabinet import hookspecs
from kabinet.contrib import Manifest
from kabinet.errors import PluginError
from kabinet.settings import RawSettings

if TYPE_CHECKING:
    import click

GROUP = "kabinet.plugins"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

BUILTINS: tuple[tuple[str, str], ...] = (
    ("host", "kabinet.builtin.plugin"),
    ("identity", "kabinet.identity.plugin"),
    ("roles", "kabinet.roles.plugin"),
    ("shell", "kabinet.shell.plugin"),
    ("keycloak", "kabinet.keycloak.plugin"),
)
"""Built-in plugins: (name, module). Always enabled; registered like any other."""


@dataclasses.dataclass
class PluginInfo:
    """One installed plugin, enabled or not."""

    name: str
    entry_point: str
    """``group:name = value`` of the entry point, or ``builtin`` for the host's own."""
    obj: object
    manifest: Manifest
    enabled: bool
    builtin: bool = False
    distribution: str | None = None
    problem: str = ""
    """Why a disabled plugin could not be loaded (it is listed, not refused)."""

    @property
    def version(self) -> str:
        return self.manifest.version

    def fail(self, fault: str) -> PluginError:
        return PluginError(self.name, self.entry_point, fault)


@dataclasses.dataclass(frozen=True)
class Result:
    """What one plugin's implementation of a hook returned."""

    plugin: PluginInfo
    value: Any


class Plugins:
    """The enabled plugins in hook order, their pluggy manager, and the disabled ones."""

    def __init__(
        self, pm: pluggy.PluginManager, ordered: list[PluginInfo], disabled: list[PluginInfo]
    ) -> None:
        self.pm = pm
        self.ordered = ordered
        self.disabled = disabled
        self.by_name = {p.name: p for p in ordered}

    def __iter__(self) -> Any:
        return iter(self.ordered)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    @property
    def installed(self) -> list[PluginInfo]:
        return sorted([*self.ordered, *self.disabled], key=lambda p: (not p.builtin, p.name))

    def hooks_of(self, plugin: PluginInfo) -> list[str]:
        """Names of the hooks ``plugin`` implements."""
        names = []
        for caller in self.pm.get_hookcallers(plugin.obj) or []:
            names.append(caller.name)
        return sorted(names)

    def _impls(
        self, hook: str, reverse: bool = False
    ) -> Iterable[tuple[PluginInfo, pluggy.HookImpl]]:
        caller = getattr(self.pm.hook, hook)
        impls = {id(i.plugin): i for i in caller.get_hookimpls()}
        order = reversed(self.ordered) if reverse else self.ordered
        for plugin in order:
            impl = impls.get(id(plugin.obj))
            if impl is not None:
                yield plugin, impl

    @staticmethod
    def _invoke(plugin: PluginInfo, impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        try:
            return impl.function(**{a: kwargs[a] for a in impl.argnames})
        except KeyError as exc:
            raise plugin.fail(f"hook {impl.function.__name__}: no argument {exc}") from None

    async def acall(self, hook: str, *, reverse: bool = False, **kwargs: Any) -> list[Result]:
        """Call ``hook`` on every enabled plugin in order, awaiting coroutines."""
        results = []
        for plugin, impl in self._impls(hook, reverse):
            value = self._invoke(plugin, impl, kwargs)
            if inspect.isawaitable(value):
                value = await value
            if value is not None:
                results.append(Result(plugin, value))
        return results

    async def afolders(self, hook: str) -> list[tuple[PluginInfo, Path]]:
        """Call a hook that answers a folder (``template_dir``, ``static_dir``,
        ``locale_dir``); a plugin whose answer is not an existing folder is refused."""
        found = []
        for result in await self.acall(hook):
            folder = Path(result.value)
            if not folder.is_dir():  # noqa: ASYNC240 (once, at start-up)
                raise result.plugin.fail(f"{hook} {folder} is not a folder")
            found.append((result.plugin, folder))
        return found

    async def afirst(
        self, hook: str, *, accept: Callable[[Any], bool] = lambda v: v is not None, **kwargs: Any
    ) -> Result | None:
        """Call ``hook`` on the enabled plugins in order until one's answer is accepted
        (``accept``: by default any answer but ``None``); the rest are not called."""
        for plugin, impl in self._impls(hook, False):
            value = self._invoke(plugin, impl, kwargs)
            if inspect.isawaitable(value):
                value = await value
            if accept(value):
                return Result(plugin, value)
        return None

    def call(self, hook: str, *, reverse: bool = False, **kwargs: Any) -> list[Result]:
        """Call ``hook`` outside an event loop (the CLI); coroutines are run to completion."""
        results = []
        for plugin, impl in self._impls(hook, reverse):
            value = self._invoke(plugin, impl, kwargs)
            if inspect.iscoroutine(value):
                value = run_sync(value)
            if value is not None:
                results.append(Result(plugin, value))
        return results

    def flat(self, results: list[Result]) -> list[tuple[PluginInfo, Any]]:
        """Flatten hooks returning lists into (plugin, item) pairs."""
        return [(r.plugin, item) for r in results for item in r.value]


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from sync code, even when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    entry_point: str
    load: Callable[[], object]
    builtin: bool = False
    distribution: str | None = None


def entry_point_candidates(
    distributions: Iterable[metadata.Distribution] | None = None,
) -> list[Candidate]:
    """Entry points of the group ``kabinet.plugins`` in the given (or installed) distributions."""
    found: list[Candidate] = []
    seen: set[tuple[str, str]] = set()
    dists = metadata.distributions() if distributions is None else distributions
    for dist in dists:
        for ep in dist.entry_points:
            if ep.group != GROUP or (ep.name, ep.value) in seen:
                continue
            seen.add((ep.name, ep.value))
            found.append(
                Candidate(
                    name=ep.name,
                    entry_point=f"{ep.name} = {ep.value}",
                    load=ep.load,
                    distribution=dist.metadata["Name"],
                )
            )
    return sorted(found, key=lambda c: (c.name, c.entry_point))


def builtin_candidates() -> list[Candidate]:
    return [
        Candidate(
            name=name,
            entry_point=f"builtin {module}",
            load=functools.partial(importlib.import_module, module),
            builtin=True,
            distribution="kabinet",
        )
        for name, module in BUILTINS
    ]


def load_plugins(
    raw: RawSettings,
    candidates: Sequence[Candidate] | None = None,
    *,
    host_version: str = kabinet.__version__,
) -> Plugins:
    """Load, validate and order the plugins; raise :class:`PluginError` on the first fault."""
    if candidates is None:
        candidates = [*builtin_candidates(), *entry_point_candidates()]
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    names: dict[str, PluginInfo] = {}
    for cand in candidates:
        if not NAME_RE.match(cand.name):
            raise PluginError(
                cand.name,
                cand.entry_point,
                "a plugin name is lower-case letters, digits and _, starting with a letter",
            )
        if cand.name in names:
            other = names[cand.name]
            raise PluginError(
                cand.name,
                cand.entry_point,
                f"the name is also claimed by entry point {other.entry_point}",
            )
        enabled_here = raw.enabled(cand.name)
        if cand.builtin and not enabled_here:
            raise PluginError(
                cand.name, cand.entry_point, "is built into the host and cannot be disabled"
            )
        if not enabled_here:
            info = _disabled(cand)
        else:
            try:
                obj = cand.load()
            except Exception as exc:  # any import fault of a plugin is reported, not raised
                raise PluginError(
                    cand.name, cand.entry_point, f"failed to import: {type(exc).__name__}: {exc}"
                ) from exc
            _register(pm, cand, obj)
            info = PluginInfo(
                name=cand.name,
                entry_point=cand.entry_point,
                obj=obj,
                manifest=_manifest(pm, cand, obj),
                enabled=True,
                builtin=cand.builtin,
                distribution=cand.distribution,
            )
        names[cand.name] = info
        infos.append(info)
    enabled = [i for i in infos if i.enabled]
    by_name = {i.name: i for i in infos}
    for info in enabled:
        _check_host(info, host_version)
        for req in info.manifest.requires:
            required = by_name.get(req)
            if required is None:
                raise info.fail(f"requires plugin {req!r}, which is not installed")
            if not required.enabled:
                raise info.fail(
                    f"requires plugin {req!r}, which is disabled in settings.toml "
                    f"(enable it, or disable {info.name!r} too)"
                )
    ordered = order(enabled)
    _add_published_hookspecs(pm, ordered)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise _attribute(pm, exc, infos) from None
    for info in ordered:
        for caller in pm.get_hookcallers(info.obj) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is info.obj and (impl.wrapper or impl.hookwrapper):
                    raise info.fail(
                        f"hook {caller.name}: wrappers are not supported; the host calls "
                        "each plugin's implementation itself"
                    )
    return Plugins(pm, ordered, [i for i in infos if not i.enabled])


def _register(pm: pluggy.PluginManager, cand: Candidate, obj: object) -> None:
    try:
        pm.register(obj, name=cand.name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(cand.name, cand.entry_point, _explain(pm, str(exc))) from None
    except ValueError as exc:
        raise PluginError(cand.name, cand.entry_point, str(exc)) from None


def _disabled(cand: Candidate) -> PluginInfo:
    """A disabled plugin, listed but never registered: its faults cannot stop start-up
    (disabling a plugin broken by an upgrade is how one gets the portal back)."""
    obj: object = None
    try:
        obj = cand.load()
        scratch = pluggy.PluginManager(hookspecs.PROJECT)
        scratch.add_hookspecs(hookspecs)
        scratch.register(obj, name=cand.name)
        manifest = _manifest(scratch, cand, obj)
        problem = ""
    except Exception as exc:  # reported by `kabinet plugins`, not raised: it is disabled
        fault = exc.fault if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
        manifest = Manifest(name=cand.name, version="?", title={"en": cand.name})
        problem = fault
    return PluginInfo(
        name=cand.name,
        entry_point=cand.entry_point,
        obj=obj,
        manifest=manifest,
        enabled=False,
        builtin=cand.builtin,
        distribution=cand.distribution,
        problem=problem,
    )


def _manifest(pm: pluggy.PluginManager, cand: Candidate, obj: object) -> Manifest:
    impls = [i for i in pm.hook.manifest.get_hookimpls() if i.plugin is obj]
    if not impls:
        raise PluginError(cand.name, cand.entry_point, "implements no manifest hook")
    try:
        value = impls[0].function()
        if inspect.iscoroutine(value):
            value = run_sync(value)
    except Exception as exc:  # a plugin's own fault, reported with its name
        raise PluginError(
            cand.name, cand.entry_point, f"manifest hook failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(value, Manifest):
        raise PluginError(
            cand.name, cand.entry_point, f"manifest hook returned {value!r}, not a Manifest"
        )
    if value.name != cand.name:
        raise PluginError(
            cand.name,
            cand.entry_point,
            f"manifest name {value.name!r} differs from the entry point name {cand.name!r}",
        )
    return value


def _check_host(info: PluginInfo, host_version: str) -> None:
    try:
        spec = SpecifierSet(info.manifest.requires_host)
    except InvalidSpecifier:
        raise info.fail(
            f"requires_host {info.manifest.requires_host!r} is not a PEP 440 specifier "
            "(e.g. '>=0.1,<1')"
        ) from None
    if not spec.contains(Version(host_version), prereleases=True):
        raise info.fail(
            f"requires host kabinet{info.manifest.requires_host}, "
            f"but kabinet {host_version} is installed"
        )


def order(plugins: list[PluginInfo]) -> list[PluginInfo]:
    """Dependency order, then name (built-ins first); a cycle is a :class:`PluginError`."""
    by_name = {p.name: p for p in plugins}
    waiting = {p.name: set(p.manifest.requires) for p in plugins}
    dependents: dict[str, list[str]] = {p.name: [] for p in plugins}
    for name, reqs in waiting.items():
        for req in reqs:
            dependents[req].append(name)
    ready = [(not by_name[n].builtin, n) for n, reqs in waiting.items() if not reqs]
    heapq.heapify(ready)
    result: list[PluginInfo] = []
    while ready:
        _, name = heapq.heappop(ready)
        result.append(by_name[name])
        for dep in dependents[name]:
            waiting[dep].discard(name)
            if not waiting[dep]:
                heapq.heappush(ready, (not by_name[dep].builtin, dep))
    if len(result) < len(plugins):
        stuck = sorted(n for n, reqs in waiting.items() if reqs)
        cycle = _find_cycle(stuck[0], {n: waiting[n] for n in stuck})
        raise by_name[cycle[0]].fail("dependency cycle: " + " -> ".join(cycle))
    return result


def _find_cycle(start: str, edges: dict[str, set[str]]) -> list[str]:
    path = [start]
    while True:
        nxt = sorted(edges[path[-1]] & edges.keys())[0]
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)


def _add_published_hookspecs(pm: pluggy.PluginManager, ordered: list[PluginInfo]) -> None:
    """Add the hook specifications enabled plugins publish, then check who implements them."""
    for info in ordered:
        impls = [i for i in pm.hook.hookspecs.get_hookimpls() if i.plugin is info.obj]
        if not impls:
            continue
        try:
            module = impls[0].function()
            if inspect.iscoroutine(module):
                module = run_sync(module)
        except Exception as exc:  # a plugin's own fault, reported with its name
            raise info.fail(f"hookspecs hook failed: {type(exc).__name__}: {exc}") from exc
        if module is None:
            continue
        if not isinstance(module, ModuleType | type):
            raise info.fail(f"hookspecs hook returned {module!r}, not a module")
        known = {n for n, c in vars(pm.hook).items() if getattr(c, "spec", None) is not None}
        for name in sorted(known & set(dir(module))):
            if pm.parse_hookspec_opts(module, name) is not None:
                raise info.fail(f"publishes hook {name!r}, which already exists")
        try:
            pm.add_hookspecs(module)
        except pluggy.PluginValidationError as exc:
            raise _attribute(pm, exc, ordered) from None
        except ValueError as exc:
            raise info.fail(f"hook specifications in {module.__name__}: {exc}") from None


def _attribute(
    pm: pluggy.PluginManager, exc: pluggy.PluginValidationError, infos: list[PluginInfo]
) -> PluginError:
    for info in infos:
        if exc.plugin is info.obj:
            return info.fail(_explain(pm, str(exc)))
    return PluginError("?", None, _explain(pm, str(exc)))


def _explain(pm: pluggy.PluginManager, message: str) -> str:
    """pluggy's validation message, said plainly and without its repr of the plugin."""
    unknown = re.match(r"unknown hook '([^']+)' in plugin ", message)
    if unknown:
        name = unknown.group(1)
        known = [n for n, c in vars(pm.hook).items() if getattr(c, "spec", None) is not None]
        hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        tip = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"implements unknown hook {name!r}{tip}"
    args = re.search(r"for hook '([^']+)'.*Argument\(s\) \{(.*)\} are declared", message, re.S)
    if args:
        hook = args.group(1)
        caller = getattr(pm.hook, hook, None)
        spec = getattr(caller, "spec", None)
        allowed = ", ".join(spec.argnames) if spec is not None else ""
        names = sorted(re.findall(r"'([^']+)'", args.group(2)))
        listed = ", ".join(repr(n) for n in names)
        what = f"argument {listed} is not one" if len(names) == 1 else f"arguments {listed} are not"
        return f"hook {hook}: {what} of the hook's arguments ({allowed or 'none'})"
    message = re.sub(r"^Plugin '[^']*' for hook '([^']*)'\s*", r"hook \1: ", message)
    message = re.sub(r"\s*hookimpl definition:.*?\n", " ", message, flags=re.S)
    return " ".join(message.split())


def require_unique(kind: str, claims: Iterable[tuple[PluginInfo, str]]) -> None:
    """Refuse two plugins (or one plugin twice) claiming one ``kind`` by the same key."""
    seen: dict[str, PluginInfo] = {}
    for plugin, key in claims:
        other = seen.get(key)
        if other is not None:
            if other is plugin:
                raise plugin.fail(f"declares {kind} {key!r} twice")
            raise plugin.fail(
                f"{kind} {key!r} is already claimed by plugin {other.name!r} "
                f"(entry point {other.entry_point})"
            )
        seen[key] = plugin


def collect_commands(
    plugins: Plugins, results: list[Result], reserved: Iterable[str]
) -> dict[str, tuple[PluginInfo, click.Command]]:
    """The click commands plugins contribute, by name; one name, one plugin, none of the
    host's own (``reserved``)."""
    import click

    taken = set(reserved)
    claims: list[tuple[PluginInfo, str]] = []
    commands: dict[str, tuple[PluginInfo, click.Command]] = {}
    for plugin, command in plugins.flat(results):
        if not isinstance(command, click.Command):
            raise plugin.fail(f"cli_commands hook returned {command!r}, not a click command")
        if not command.name:
            raise plugin.fail(f"CLI command {command!r} has no name")
        if command.name in taken:
            raise plugin.fail(
                f"CLI command {command.name!r} is the host's own (choose another name)"
            )
        claims.append((plugin, command.name))
        commands.setdefault(command.name, (plugin, command))
    require_unique("CLI command", claims)
    return commands
