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
import dataclasses
import functools
import heapq
import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

import kabinet
from kabinet import hookspecs
from kabinet.contrib import Manifest
from kabinet.errors import PluginError
from kabinet.settings import RawSettings

GROUP = "kabinet.plugins"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

BUILTINS: tuple[tuple[str, str], ...] = (("host", "kabinet.builtin.host"),)
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

    def call(self, hook: str, *, reverse: bool = False, **kwargs: Any) -> list[Result]:
        """Call ``hook`` outside an event loop (the CLI); coroutines are run to completion."""
        results = []
        for plugin, impl in self._impls(hook, reverse):
            value = self._invoke(plugin, impl, kwargs)
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
            if value is not None:
                results.append(Result(plugin, value))
        return results

    def flat(self, results: list[Result]) -> list[tuple[PluginInfo, Any]]:
        """Flatten hooks returning lists into (plugin, item) pairs."""
        return [(r.plugin, item) for r in results for item in r.value]


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
                cand.name, cand.entry_point, "a plugin name is lower-case letters, digits and _"
            )
        if cand.name in names:
            other = names[cand.name]
            raise PluginError(
                cand.name,
                cand.entry_point,
                f"the name is also claimed by entry point {other.entry_point}",
            )
        try:
            obj = cand.load()
        except Exception as exc:  # any import fault of a plugin is reported, not raised
            raise PluginError(
                cand.name, cand.entry_point, f"failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        _register(pm, cand, obj)
        manifest = _manifest(pm, cand, obj)
        info = PluginInfo(
            name=cand.name,
            entry_point=cand.entry_point,
            obj=obj,
            manifest=manifest,
            enabled=cand.builtin or raw.enabled(cand.name),
            builtin=cand.builtin,
            distribution=cand.distribution,
        )
        names[cand.name] = info
        infos.append(info)
    for info in infos:
        if not info.enabled:
            pm.unregister(info.obj)
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
        raise _attribute(exc, infos) from None
    return Plugins(pm, ordered, [i for i in infos if not i.enabled])


def _register(pm: pluggy.PluginManager, cand: Candidate, obj: object) -> None:
    try:
        pm.register(obj, name=cand.name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(cand.name, cand.entry_point, _clean(str(exc))) from None
    except ValueError as exc:
        raise PluginError(cand.name, cand.entry_point, str(exc)) from None


def _manifest(pm: pluggy.PluginManager, cand: Candidate, obj: object) -> Manifest:
    impls = [i for i in pm.hook.manifest.get_hookimpls() if i.plugin is obj]
    if not impls:
        raise PluginError(cand.name, cand.entry_point, "implements no manifest hook")
    try:
        value = impls[0].function()
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
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
            f"requires_host {info.manifest.requires_host!r} is not a PEP 440 specifier"
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
    for info in ordered:
        impls = [i for i in pm.hook.hookspecs.get_hookimpls() if i.plugin is info.obj]
        if not impls:
            continue
        module = impls[0].function()
        if not isinstance(module, ModuleType | type):
            raise info.fail(f"hookspecs hook returned {module!r}, not a module")
        try:
            pm.add_hookspecs(module)
        except pluggy.PluginValidationError as exc:
            raise _attribute(exc, ordered) from None
        except ValueError as exc:
            raise info.fail(f"hook specifications in {module.__name__}: {exc}") from None


def _attribute(exc: pluggy.PluginValidationError, infos: list[PluginInfo]) -> PluginError:
    for info in infos:
        if exc.plugin is info.obj:
            return info.fail(_clean(str(exc)))
    return PluginError("?", None, _clean(str(exc)))


def _clean(message: str) -> str:
    """pluggy's validation message without its repr of the plugin object."""
    message = re.sub(r"^Plugin '[^']*' for hook '([^']*)'\s*", r"hook \1: ", message)
    message = re.sub(r"\s*hookimpl definition:.*?\n", " ", message, flags=re.S)
    unknown = re.match(r"unknown hook '([^']+)' in plugin .*", message)
    if unknown:
        return f"implements unknown hook {unknown.group(1)!r}"
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
