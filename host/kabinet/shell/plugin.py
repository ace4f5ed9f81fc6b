"""Hook implementations of the built-in ``shell`` plugin: the home page, the language switch,
the installed plugins (:mod:`.pages`), Redis's health check.

The layout itself (``templates/shell/base.html``), the error pages and the static files
(``static/shell/``: our CSS and htmx) belong to this plugin too; the web app serves them
for every other plugin's pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import kabinet
from kabinet.contrib import HealthCheck, Manifest, NavItem
from kabinet.hookspecs import hookimpl
from kabinet.shell.pages import PLUGINS_PERMISSION

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="shell",
        version=kabinet.__version__,
        title={"ru": "Оболочка страниц", "en": "Page shell"},
        description="The layout of every page, the home page and the language switch.",
    )


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet.shell.pages import home, plugins_page, switch_language

    return [home, switch_language, plugins_page]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/shell/plugins",
            label={"ru": "Приложения", "en": "Apps"},
            permission=PLUGINS_PERMISSION,
            order=900,
            section="admin",
        )
    ]


async def _redis(host: Host) -> str | None:
    import redis.asyncio as aioredis  # only where Redis is configured

    client = aioredis.from_url(host.settings.host.redis_url)
    try:
        await client.ping()
    except Exception as exc:  # any fault of the connection means "not ready", with its reason
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


@hookimpl
def health_checks(host: Host) -> list[HealthCheck]:
    """Redis, when the portal is configured to use it."""
    if not host.settings.host.redis_url:
        return []
    return [HealthCheck(name="redis", check=_redis)]
