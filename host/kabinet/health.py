"""Running the health checks plugins declare (``health_checks`` hook), for ``/ready``,
``/health/checks`` and ``kabinet check``.

Readiness (``/ready``, for the load balancer) means "this process can serve": its
database answers, its migrations are applied, its Redis answers. Alerts (checks declared
with ``readiness=False``, e.g. the 1C sync gone stale) say that something outside the
process needs a person: ``/health/checks`` shows them with the rest for monitoring, a
failing one is logged as a warning, and none of them takes the portal out of rotation.

The host checks the migrations before any plugin's check: a plugin whose tables are
behind its code (``kabinet db upgrade`` not run yet) has its checks reported as not run,
naming the pending revisions, instead of failing on a table that does not exist.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kabinet.contrib import HealthCheck
    from kabinet.host import Host
    from kabinet.plugins import PluginInfo

log = logging.getLogger("kabinet.health")

TIMEOUT = 5.0
"""Seconds a check may take before it counts as failed."""
MIGRATIONS = "host.migrations"


@dataclasses.dataclass(frozen=True)
class Result:
    """One check's outcome: ``fault`` is ``None`` when healthy."""

    name: str
    readiness: bool
    fault: str | None
    ran: bool = True
    """False: not run, because the plugin's migrations are pending."""

    def report(self, *, kind: bool = False) -> dict[str, str]:
        """As ``/ready`` (and with ``kind``, ``/health/checks``) shows it."""
        out = {"state": "ok"}
        if self.fault is not None:
            out = {"state": "failed" if self.ran else "not run", "error": self.fault}
        if kind:
            out["kind"] = "readiness" if self.readiness else "alert"
        return out


def pending_text(behind: dict[str, list[str]]) -> str:
    """``integration (3b7e…, 9a21…), shipments (…)``: what ``kabinet db upgrade`` applies."""
    return "; ".join(f"{name} ({', '.join(revs)})" for name, revs in behind.items())


async def _run(name: str, hc: HealthCheck, host: Host) -> Result:
    try:
        fault = await asyncio.wait_for(hc.check(host), TIMEOUT)
    except TimeoutError:
        fault = f"no answer within {TIMEOUT:g} s"
    except Exception as exc:  # a broken check is a failed check, not a crashed /ready
        fault = f"{type(exc).__name__}: {exc}"
    return Result(name, hc.readiness, fault)


async def behind(host: Host) -> dict[str, list[str]] | None:
    """Pending revisions per plugin; ``None`` when the database cannot say."""
    try:
        return await host.migrations.behind()
    except Exception:  # the database check says why
        return None


def _blocked(plugin: PluginInfo, pending: dict[str, list[str]] | None) -> str | None:
    """Why ``plugin``'s checks cannot run yet (its or a required plugin's tables)."""
    if plugin.name == "host":
        return None  # the database check itself
    if pending is None:
        return "the database cannot be asked (see host.database)"
    own = {plugin.name, *plugin.manifest.requires}
    late = {name: revs for name, revs in pending.items() if name in own}
    if late:
        return f"migrations pending: {pending_text(late)}; run `kabinet db upgrade`"
    return None


async def run_checks(host: Host, *, alerts: bool = True) -> list[Result]:
    """Every check (readiness ones only unless ``alerts``), in the plugins' order, with
    the migrations check after the host's own."""
    pending = await behind(host)
    results: list[Result] = []
    runnable = []
    for plugin, hc in host.health_checks:
        if not (hc.readiness or alerts):
            continue
        name = f"{plugin.name}.{hc.name}"
        blocked = _blocked(plugin, pending) if plugin.name in _with_tables(host) else None
        if blocked is not None:
            results.append(Result(name, hc.readiness, blocked, ran=False))
        else:
            runnable.append((name, hc))
    results.extend(await asyncio.gather(*(_run(n, hc, host) for n, hc in runnable)))
    if pending:
        results.append(Result(MIGRATIONS, True, f"pending: {pending_text(pending)}"))
    elif pending is not None:
        results.append(Result(MIGRATIONS, True, None))
    order = {f"{p.name}.{hc.name}": i for i, (p, hc) in enumerate(host.health_checks)}
    results.sort(key=lambda r: order.get(r.name, order.get("host.database", -1) + 0.5))
    for r in results:
        if r.fault is not None and not r.readiness:
            log.warning("health check %s failed: %s", r.name, r.fault)
    return results


def _with_tables(host: Host) -> set[str]:
    """Plugins with tables, and those requiring one: their checks may read tables."""
    names = {s.name for s in host.schemas}
    return {p.name for p in host.plugins if p.name in names or set(p.manifest.requires) & names}
