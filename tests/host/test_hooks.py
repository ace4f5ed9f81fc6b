"""One test per host hook: a throwaway plugin implements it, and the test checks what the
host does with the result.

Each test is named ``test_hook_<hook>`` so ``test_hook_contract.py`` can see that every
hook has one. Where the consumer of a hook is not built yet (the page shell consumes
navigation, panels, templates and static files; the event bus consumes subscriptions),
the test checks what exists: the host collects the contribution in dependency order and
knows which plugin gave it.

Two plugins recur: ``zeta`` and ``alpha``, where ``alpha`` requires ``zeta``. By name,
alpha comes first; by dependency, zeta does, so an order test tells the two apart.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import inspect, text

from kabinet.cli import cli
from kabinet.errors import PluginError
from kabinet.host import Host
from kabinet.testing import PluginFactory
from kabinet.web import build_app, collect_routes, create_app

pytestmark = pytest.mark.smoke

Make = Callable[..., Awaitable[Host]]


@pytest.fixture
async def make(plugin_factory: PluginFactory, tmp_path: Path) -> AsyncIterator[Make]:
    """Build a host from the built-ins and the throwaway plugins (file SQLite unless given)."""
    hosts: list[Host] = []

    async def build(settings: str = "", *, database_url: str | None = None) -> Host:
        path = tmp_path / "settings.toml"
        path.write_text(settings)
        url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}"
        host = await Host.create(
            path, env={"KABINET__HOST__DATABASE_URL": url}, candidates=plugin_factory.candidates()
        )
        hosts.append(host)
        return host

    yield build
    for host in hosts:
        await host.db.dispose()


def zeta_and_alpha(factory: PluginFactory, zeta: str, alpha: str) -> None:
    """Two plugins implementing the same hook; alpha requires zeta."""
    factory.add("zeta", zeta)
    factory.add("alpha", alpha, requires=("zeta",))


async def collected(host: Host, hook: str, /, **kwargs: Any) -> list[tuple[str, Any]]:
    """(plugin, item) from the throwaway plugins for a hook returning lists, in call order.

    Built-in plugins (identity, roles, the shell…) contribute too; they are left out.
    """
    results = await host.plugins.acall(hook, **kwargs)
    return [(p.name, item) for p, item in host.plugins.flat(results) if not p.builtin]


# -- loading ------------------------------------------------------------------------------


async def test_hook_manifest(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add(
        "depot",
        """
        class DepotSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
            capacity: int = 10
            city: str = "Moscow"

        @hookimpl
        def manifest():
            return Manifest(
                name="depot", version="2.1.0", title={"ru": "Склад", "en": "Depot"},
                requires_host=">=0.1", settings=DepotSettings, description="Where pallets wait.",
            )
        """,
        manifest=False,
    )
    host = await make("[depot]\ncapacity = 40\n")
    depot = host.plugins.by_name["depot"]
    assert (depot.version, depot.manifest.title["en"], depot.enabled) == ("2.1.0", "Depot", True)
    settings = host.plugin_settings("depot")
    assert (type(settings).__name__, settings.capacity, settings.city) == (
        "DepotSettings",
        40,
        "Moscow",
    )
    names = [p.name for p in host.plugins]
    assert names[-1] == "depot"
    assert all(host.plugins.by_name[n].builtin for n in names[:-1])


async def test_hook_manifest_async(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add(
        "depot",
        """
        @hookimpl
        async def manifest():
            return Manifest(name="depot", version="3.0", title={"ru": "Склад", "en": "Depot"})
        """,
        manifest=False,
    )
    host = await make()
    assert host.plugins.by_name["depot"].version == "3.0"


async def test_hook_manifest_disabled_plugin_contributes_nothing(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "depot",
        """
        @hookimpl
        def permissions():
            return [Permission(code="depot.pallets.view", label={"ru": "п", "en": "p"})]
        """,
    )
    host = await make("[depot]\nenabled = false\n")
    assert "depot" not in host.plugins
    assert [p.name for p in host.plugins.disabled] == ["depot"]
    assert "depot.pallets.view" not in host.permissions


async def test_hook_hookspecs(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add(
        "zeta",
        """
        import importlib

        @hookimpl
        async def hookspecs():
            return importlib.import_module(__name__ + ".specs")

        @hookimpl
        def zeta_carriers(host):
            return ["zeta-own"]
        """,
        files={
            "specs.py": '''
                from kabinet.hookspecs import hookspec

                @hookspec
                def zeta_carriers(host: object) -> list[str]:
                    """Called when zeta lists carriers; returns carrier names."""
                '''
        },
    )
    plugin_factory.add(
        "alpha",
        """
        @hookimpl
        async def zeta_carriers():
            return ["alpha-truck", "alpha-rail"]
        """,
        requires=("zeta",),
    )
    host = await make()
    caller = host.plugins.pm.hook.zeta_carriers
    assert caller.spec is not None
    assert caller.spec.argnames == ("host",)
    assert await collected(host, "zeta_carriers", host=host) == [
        ("zeta", "zeta-own"),
        ("alpha", "alpha-truck"),
        ("alpha", "alpha-rail"),
    ]


async def test_hook_hookspecs_implementation_with_unknown_argument_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "zeta",
        """
        import importlib

        @hookimpl
        def hookspecs():
            return importlib.import_module(__name__ + ".specs")
        """,
        files={
            "specs.py": '''
                from kabinet.hookspecs import hookspec

                @hookspec
                def zeta_carriers(host: object) -> list[str]:
                    """Called when zeta lists carriers; returns carrier names."""
                '''
        },
    )
    plugin_factory.add(
        "alpha",
        """
        @hookimpl
        def zeta_carriers(host, region):
            return []
        """,
        requires=("zeta",),
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert err.value.plugin == "alpha"
    assert "zeta_carriers" in err.value.fault
    assert "region" in err.value.fault


# -- database -----------------------------------------------------------------------------

DEPOT_MODELS = """
    from sqlalchemy import Column, Integer, String, Table
    from kabinet.db import plugin_metadata

    metadata = plugin_metadata()
    pallet = Table(
        "depot_pallet", metadata,
        Column("id", Integer, primary_key=True),
        Column("code", String(20), nullable=False, unique=True),
    )
"""


async def test_hook_database(
    plugin_factory: PluginFactory, make: Make, empty_database_url: str
) -> None:
    plugin_factory.add(
        "depot",
        """
        from pathlib import Path
        from .models import metadata

        @hookimpl
        async def database():
            return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")
        """,
        files={"models.py": DEPOT_MODELS, "migrations/README": "Revisions of depot.\n"},
    )
    host = await make(database_url=empty_database_url)
    assert [s.name for s in host.schemas][-1] == "depot"
    migrations = host.migrations
    # `kabinet db revision depot -m ...`: autogenerated from depot's tables only.
    (written,) = await migrations.revision("depot", "create pallets")
    assert written.parent.name == "migrations"
    assert "depot_pallet" in written.read_text()
    await migrations.upgrade()
    assert await migrations.diff("depot") == []
    async with host.db.engine.connect() as conn:
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert {"depot_pallet", "depot_alembic_version"} <= tables
    async with host.db.session() as session:
        await session.execute(text("INSERT INTO depot_pallet (code) VALUES ('P-1')"))
    async with host.db.session() as session:
        codes = (await session.execute(text("SELECT code FROM depot_pallet"))).scalars().all()
    assert codes == ["P-1"]
    await migrations.downgrade("depot", "base")
    assert (await migrations.current())["depot"] is None


async def test_hook_database_table_outside_prefix_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "depot",
        """
        from pathlib import Path
        from sqlalchemy import Column, Integer, Table
        from kabinet.db import plugin_metadata

        metadata = plugin_metadata()
        Table("pallet", metadata, Column("id", Integer, primary_key=True))

        @hookimpl
        def database():
            return Database(metadata=metadata, migrations=Path(__file__).parent)
        """,
    )
    with pytest.raises(PluginError, match="table 'pallet' must start with 'depot_'"):
        await make()


# -- web ----------------------------------------------------------------------------------

DEPOT_ROUTER = """
    from litestar import Router, get
    from kabinet.access import public

    @get("/hello", access=public, sync_to_thread=False)
    def hello() -> dict[str, str]:
        return {"depot": "open"}

    @hookimpl
    async def routers(host):
        return [Router(path="/api/depot", route_handlers=[hello])]
"""


async def test_hook_routers(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("depot", DEPOT_ROUTER)
    host = await make()
    app = create_app(host, await collect_routes(host))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/api/depot/hello")
    assert response.status_code == 200
    assert response.json() == {"depot": "open"}


async def test_hook_routers_prefix_claimed_twice_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add("depot", DEPOT_ROUTER)
    plugin_factory.add(
        "yard",
        """
        from litestar import Router, get
        from kabinet.access import public

        @get("/bye", access=public, sync_to_thread=False)
        def bye() -> str:
            return "bye"

        @hookimpl
        def routers(host):
            return [Router(path="/api/depot", route_handlers=[bye])]
        """,
    )
    host = await make()
    with pytest.raises(PluginError) as err:
        await collect_routes(host)
    assert err.value.plugin == "yard"
    assert "route prefix '/api/depot' is already claimed by plugin 'depot'" in err.value.fault


MIDDLEWARE = """
    from litestar import get
    from kabinet.access import public

    def stamp(host, name):
        def factory(app):
            async def middleware(scope, receive, send):
                if scope["type"] != "http":
                    return await app(scope, receive, send)
                host.services.setdefault("entered", []).append(name)

                async def send_stamped(message):
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message["headers"], (f"x-{name}".encode(), b"1")]
                    await send(message)

                await app(scope, receive, send_stamped)

            return middleware

        return factory
"""


async def test_hook_middleware(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(
        plugin_factory,
        MIDDLEWARE
        + """
    @get("/api/zeta/ping", access=public, sync_to_thread=False)
    def ping() -> str:
        return "pong"

    @hookimpl
    def routers(host):
        return [ping]

    @hookimpl
    def middleware(host):
        return [stamp(host, "zeta")]
    """,
        MIDDLEWARE
        + """
    @hookimpl
    async def middleware(host):
        return [stamp(host, "alpha")]
    """,
    )
    host = await make()
    async with AsyncTestClient(app=await build_app(host)) as client:
        response = await client.get("/api/zeta/ping")
    assert response.text == "pong"
    assert (response.headers["x-zeta"], response.headers["x-alpha"]) == ("1", "1")
    # Outermost first, in hook order: zeta's middleware sees the request before alpha's.
    assert host.services["entered"] == ["zeta", "alpha"]


async def test_hook_navigation(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(
        plugin_factory,
        """
        @hookimpl
        def navigation(host):
            return [NavItem(path="/zeta/", label={"ru": "Зета", "en": "Zeta"}, order=20)]
        """,
        """
        @hookimpl
        async def navigation(host):
            return [NavItem(path="/alpha/", label={"ru": "Альфа", "en": "Alpha"},
                            permission="alpha.pages.view", order=10)]
        """,
    )
    host = await make()
    got = await collected(host, "navigation", host=host)
    assert [(name, item.path, item.permission, item.order) for name, item in got] == [
        ("zeta", "/zeta/", None, 20),
        ("alpha", "/alpha/", "alpha.pages.view", 10),
    ]


async def test_hook_panels(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(
        plugin_factory,
        """
        @hookimpl
        def panels(host):
            return [Panel(slot="companies.contact", name="zeta.badge",
                          render=lambda **ctx: f"<b>{ctx['contact']}</b>")]
        """,
        """
        async def render(**ctx):
            return f"<i>{ctx['contact']}</i>"

        @hookimpl
        async def panels(host):
            return [Panel(slot="companies.contact", name="alpha.note", render=render)]
        """,
    )
    host = await make()
    got = await collected(host, "panels", host=host)
    assert [(name, p.slot, p.name) for name, p in got] == [
        ("zeta", "companies.contact", "zeta.badge"),
        ("alpha", "companies.contact", "alpha.note"),
    ]
    assert got[0][1].render(contact="Ivan") == "<b>Ivan</b>"
    assert await got[1][1].render(contact="Ivan") == "<i>Ivan</i>"


DIR_BODY = """
    from pathlib import Path

    @hookimpl
    def {hook}():
        return Path(__file__).parent / "{folder}"
"""


async def test_hook_template_dir(plugin_factory: PluginFactory, make: Make) -> None:
    await _check_dir_hook(plugin_factory, make, "template_dir", "templates")


async def test_hook_static_dir(plugin_factory: PluginFactory, make: Make) -> None:
    await _check_dir_hook(plugin_factory, make, "static_dir", "static")


async def test_hook_locale_dir(plugin_factory: PluginFactory, make: Make) -> None:
    await _check_dir_hook(plugin_factory, make, "locale_dir", "locale")
    from kabinet import i18n

    plugin_factory.add(
        "depot",
        DIR_BODY.format(hook="locale_dir", folder="locale"),
        files={
            "locale/ru/LC_MESSAGES/messages.po": """\
                msgid ""
                msgstr ""
                "Content-Type: text/plain; charset=utf-8\\n"

                msgid "Pallets in the depot"
                msgstr "Паллеты на складе"
                """
        },
    )
    await make()
    assert i18n.gettext_("ru", "Pallets in the depot") == "Паллеты на складе"
    assert i18n.gettext_("en", "Pallets in the depot") == "Pallets in the depot"
    assert i18n.gettext_("ru", "Sign out") == "Выйти"  # the host's own still there


async def test_hook_locale_dir_must_be_a_folder(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("depot", DIR_BODY.format(hook="locale_dir", folder="nowhere"))
    with pytest.raises(PluginError, match=r"locale_dir .*nowhere is not a folder") as err:
        await make()
    assert err.value.plugin == "depot"


async def _check_dir_hook(factory: PluginFactory, make: Make, hook: str, folder: str) -> None:
    zeta = factory.add(
        "zeta",
        DIR_BODY.format(hook=hook, folder=folder),
        files={f"{folder}/zeta/index.txt": "zeta\n"},
    )
    alpha = factory.add(
        "alpha",
        DIR_BODY.format(hook=hook, folder=folder).replace("def ", "async def "),
        requires=("zeta",),
        files={f"{folder}/alpha/index.txt": "alpha\n"},
    )
    host = await make()
    results = [r for r in await host.plugins.acall(hook) if not r.plugin.builtin]
    assert [(r.plugin.name, r.value) for r in results] == [
        ("zeta", factory.site / zeta / folder),
        ("alpha", factory.site / alpha / folder),
    ]
    for r in results:
        assert (r.value / r.plugin.name / "index.txt").read_text() == f"{r.plugin.name}\n"


# -- events, jobs, schedules --------------------------------------------------------------


async def test_hook_event_types(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add(
        "depot",
        """
        class PalletArrived(msgspec.Struct):
            code: str

        @hookimpl
        async def event_types():
            return [EventType(name="depot.pallet.arrived", payload=PalletArrived)]
        """,
    )
    host = await make()
    plugin, event = host.event_types["depot.pallet.arrived"]
    assert plugin.name == "depot"
    assert event.payload is not None
    assert event.payload.__name__ == "PalletArrived"


async def test_hook_event_types_claimed_twice_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "depot",
        """
        @hookimpl
        def event_types():
            return [EventType(name="yard.gate.opened")]
        """,
    )
    with pytest.raises(
        PluginError, match=re.escape("event type 'yard.gate.opened' must start with 'depot.'")
    ):
        await make()


async def test_hook_subscriptions(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(
        plugin_factory,
        """
        @hookimpl
        def event_types():
            return [EventType(name="zeta.order.created")]

        def note(event):
            return None

        @hookimpl
        def subscriptions(host):
            return [Subscription(event="zeta.order.created", name="zeta.audit", handler=note)]
        """,
        """
        async def notify(event):
            return None

        @hookimpl
        async def subscriptions(host):
            return [Subscription(event="zeta.order.created", name="alpha.notify", handler=notify)]
        """,
    )
    host = await make()
    got = await collected(host, "subscriptions", host=host)
    assert [(name, s.event, s.name, s.handler.__name__) for name, s in got] == [
        ("zeta", "zeta.order.created", "zeta.audit", "note"),
        ("alpha", "zeta.order.created", "alpha.notify", "notify"),
    ]
    assert all(s.event in host.event_types for _, s in got)


ACTORS = """
    async def refresh(host, depot_id):
        host.services.setdefault("refreshed", []).append(depot_id)

    @hookimpl
    async def actors(host):
        return [Actor(name="depot.refresh", fn=lambda depot_id: refresh(host, depot_id),
                      queue="depot", max_retries=2)]
"""


async def test_hook_actors(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("depot", ACTORS)
    host = await make()
    plugin, actor = host.actors["depot.refresh"]
    assert (plugin.name, actor.queue, actor.max_retries) == ("depot", "depot", 2)
    await actor.fn(depot_id=7)
    assert host.services["refreshed"] == [7]


async def test_hook_actors_claimed_twice_refused(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("depot", ACTORS)
    plugin_factory.add("yard", ACTORS)
    with pytest.raises(PluginError) as err:
        await make()
    assert err.value.plugin == "yard"
    assert "actor 'depot.refresh' is already claimed by plugin 'depot'" in err.value.fault


async def test_hook_schedules(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add(
        "depot",
        ACTORS
        + """
    @hookimpl
    def schedules(host):
        return [
            Schedule(name="depot.nightly", actor="depot.refresh", cron="0 3 * * *",
                     kwargs={"depot_id": 1}),
            Schedule(name="depot.often", actor="depot.refresh", interval=1200,
                     kwargs={"depot_id": 2}),
        ]
    """,
    )
    host = await make()
    ours = {name: (p, s) for name, (p, s) in host.schedules.items() if not p.builtin}
    assert {name: (p.name, s.actor, s.cron, s.interval) for name, (p, s) in ours.items()} == {
        "depot.nightly": ("depot", "depot.refresh", "0 3 * * *", None),
        "depot.often": ("depot", "depot.refresh", None, 1200),
    }


async def test_hook_schedules_unknown_actor_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "depot",
        """
        @hookimpl
        async def schedules(host):
            return [Schedule(name="depot.nightly", actor="depot.missing", interval=60)]
        """,
    )
    with pytest.raises(
        PluginError, match=re.escape("schedule 'depot.nightly' sends unknown actor")
    ):
        await make()


# -- permissions, CLI, health, demo -------------------------------------------------------


async def test_hook_permissions(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(
        plugin_factory,
        """
        @hookimpl
        def permissions():
            return [Permission(code="zeta.orders.view", label={"ru": "Смотреть", "en": "View"},
                               default_roles=("client", "manager"))]
        """,
        """
        @hookimpl
        async def permissions():
            return [Permission(code="alpha.roles.edit", label={"ru": "Роли", "en": "Roles"},
                               default_roles=("admin",), scope="global")]
        """,
    )
    host = await make()
    got = {
        code: (p.name, perm.default_roles, perm.scope)
        for code, (p, perm) in host.permissions.items()
    }
    assert got["zeta.orders.view"] == ("zeta", ("client", "manager"), "organization")
    assert got["alpha.roles.edit"] == ("alpha", ("admin",), "global")
    assert list(got)[-2:] == ["zeta.orders.view", "alpha.roles.edit"]


async def test_hook_permissions_claimed_twice_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "depot",
        """
        @hookimpl
        def permissions():
            perm = Permission(code="depot.pallets.view", label={"ru": "п", "en": "p"})
            return [perm, perm]
        """,
    )
    with pytest.raises(
        PluginError, match=re.escape("declares permission 'depot.pallets.view' twice")
    ):
        await make()


CLI_BODY = """
    import click

    @click.command("depot-count")
    @click.option("--pallets", type=int, default=1, help="How many pallets.")
    def depot_count(pallets):
        \"\"\"Count the depot's pallets.\"\"\"
        click.echo(f"depot holds {pallets} pallets")

    @hookimpl
    async def cli_commands():
        return [depot_count]
"""


def test_hook_cli_commands(plugin_factory: PluginFactory, tmp_path: Path) -> None:
    # The kabinet group finds installed plugins itself; the factory's folder is on sys.path.
    plugin_factory.add("depot", CLI_BODY)
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[host]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path / "k.db"}"\n')
    runner = CliRunner()
    helped = runner.invoke(cli, ["--settings", str(settings), "--help"])
    assert helped.exit_code == 0, helped.output
    assert "depot-count" in helped.output
    assert "Count the depot's pallets." in helped.output
    ran = runner.invoke(cli, ["--settings", str(settings), "depot-count", "--pallets", "3"])
    assert ran.exit_code == 0, ran.output
    assert ran.output == "depot holds 3 pallets\n"


async def test_hook_cli_commands_host_name_refused(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add(
        "depot",
        """
        import click

        @click.command("serve")
        def serve():
            pass

        @hookimpl
        def cli_commands():
            return [serve]
        """,
    )
    with pytest.raises(PluginError, match="CLI command 'serve' is the host's own"):
        await make()


async def test_hook_health_checks(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(
        plugin_factory,
        """
        async def fine(host):
            return None

        @hookimpl
        def health_checks(host):
            return [HealthCheck(name="carrier", check=fine)]
        """,
        """
        async def broken(host):
            return "the 1C server answered 502"

        @hookimpl
        async def health_checks(host):
            return [HealthCheck(name="onec", check=broken)]
        """,
    )
    host = await make()
    app = create_app(host, await collect_routes(host))
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    ours = {k: v for k, v in checks.items() if k.split(".")[0] in {"zeta", "alpha"}}
    assert ours == {
        "zeta.carrier": {"state": "ok"},
        "alpha.onec": {"state": "failed", "error": "the 1C server answered 502"},
    }
    assert list(ours) == ["zeta.carrier", "alpha.onec"]
    assert checks["host.database"] == {"state": "ok"}


DEMO_ZETA = """
    from pathlib import Path
    from sqlalchemy import Column, Integer, String, Table, text
    from kabinet.db import plugin_metadata

    metadata = plugin_metadata()
    Table("zeta_log", metadata,
          Column("id", Integer, primary_key=True), Column("who", String(20), nullable=False))

    @hookimpl
    def database():
        return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")

    @hookimpl
    async def demo_data(host):
        async with host.db.session() as session:
            await session.execute(text("INSERT INTO zeta_log (who) VALUES ('zeta')"))
"""

DEMO_ZETA_MIGRATION = '''
    """create zeta_log"""
    import sqlalchemy as sa
    from alembic import op

    revision = "0001"
    down_revision = None
    branch_labels = None
    depends_on = None


    def upgrade():
        op.create_table(
            "zeta_log",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("who", sa.String(length=20), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_zeta_log")),
        )


    def downgrade():
        op.drop_table("zeta_log")
'''

DEMO_ALPHA = """
    from sqlalchemy import text

    @hookimpl
    async def demo_data(host):
        async with host.db.session() as session:
            await session.execute(text("INSERT INTO zeta_log (who) VALUES ('alpha')"))
"""


def test_hook_demo_data(plugin_factory: PluginFactory, tmp_path: Path) -> None:
    # `kabinet demo --no-serve` migrates a fresh SQLite database, then loads demo data
    # in dependency order: zeta's table exists and zeta's rows come before alpha's.
    plugin_factory.add("zeta", DEMO_ZETA, files={"migrations/0001_log.py": DEMO_ZETA_MIGRATION})
    plugin_factory.add("alpha", DEMO_ALPHA, requires=("zeta",))
    settings = tmp_path / "settings.toml"
    settings.write_text("")
    var = tmp_path / "var"
    result = CliRunner().invoke(
        cli,
        ["--settings", str(settings), "demo", "--no-serve"],
        env={"KABINET_DEMO_DIR": str(var)},
    )
    assert result.exit_code == 0, result.output
    assert f"Demo database ready: {var / 'demo.sqlite3'}" in result.output
    with sqlite3.connect(var / "demo.sqlite3") as conn:
        rows = conn.execute("SELECT who FROM zeta_log ORDER BY id").fetchall()
    assert rows == [("zeta",), ("alpha",)]


# -- lifecycle ----------------------------------------------------------------------------

LIFECYCLE_ZETA = """
    @hookimpl
    def startup(host):
        host.services.setdefault("calls", []).append("zeta up")

    @hookimpl
    async def shutdown(host):
        host.services.setdefault("calls", []).append("zeta down")
"""

LIFECYCLE_ALPHA = """
    @hookimpl
    async def startup(host):
        host.services.setdefault("calls", []).append("alpha up")

    @hookimpl
    def shutdown(host):
        host.services.setdefault("calls", []).append("alpha down")
"""


async def test_hook_startup(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(plugin_factory, LIFECYCLE_ZETA, LIFECYCLE_ALPHA)
    host = await make()
    app = create_app(host, await collect_routes(host))
    assert "calls" not in host.services
    async with AsyncTestClient(app=app) as client:
        assert host.services["calls"] == ["zeta up", "alpha up"]
        assert (await client.get("/health")).json() == {"status": "ok"}


async def test_hook_shutdown(plugin_factory: PluginFactory, make: Make) -> None:
    zeta_and_alpha(plugin_factory, LIFECYCLE_ZETA, LIFECYCLE_ALPHA)
    host = await make()
    app = create_app(host, await collect_routes(host))
    async with AsyncTestClient(app=app):
        pass
    assert host.services["calls"] == ["zeta up", "alpha up", "alpha down", "zeta down"]
