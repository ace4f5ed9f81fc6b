"""Start-up validation: each fault refuses to start with one message naming the plugin,
its entry point and the fault. Every case is a throwaway plugin with a real entry point.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from kabinet.errors import PluginError
from kabinet.host import Host
from kabinet.plugins import BUILTINS
from kabinet.testing import PluginFactory
from kabinet.web import collect_routes

pytestmark = pytest.mark.smoke

Make = Callable[..., Awaitable[Host]]


@pytest.fixture
def make(plugin_factory: PluginFactory, tmp_path: Path) -> Make:
    """Build a host from the built-ins and the throwaway plugins, on a file SQLite DB."""

    async def build(settings: str = "", **kwargs: object) -> Host:
        path = tmp_path / "settings.toml"
        path.write_text(settings)
        env = {"KABINET__HOST__DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}"}
        candidates = kwargs.pop("candidates", None) or plugin_factory.candidates()
        host = await Host.create(path, env=env, candidates=candidates, **kwargs)  # type: ignore[arg-type]
        await host.db.dispose()
        return host

    return build


def ep(name: str, module: str) -> str:
    return f"(entry point {name} = {module})"


# -- requirements, cycles, host version ---------------------------------------------------


async def test_missing_requirement(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", requires=("beta",))
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: requires plugin 'beta', which is not installed"
    )
    assert (err.value.plugin, err.value.entry_point) == ("alpha", f"alpha = {a}")


async def test_requirement_disabled_in_settings(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", requires=("beta",))
    plugin_factory.add("beta")
    with pytest.raises(PluginError) as err:
        await make("[beta]\nenabled = false\n")
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: requires plugin 'beta', which is disabled in "
        "settings.toml (enable it, or disable 'alpha' too)"
    )


async def test_requirement_disabled_with_its_dependent_is_fine(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add("alpha", requires=("beta",))
    plugin_factory.add("beta")
    host = await make("[alpha]\nenabled = false\n[beta]\nenabled = false\n")
    assert [p.name for p in host.plugins if not p.builtin] == []
    assert [p.name for p in host.plugins.disabled] == ["alpha", "beta"]


async def test_dependency_cycle_shows_the_cycle(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("alpha", requires=("beta",))
    b = plugin_factory.add("beta", requires=("gamma",))
    plugin_factory.add("gamma", requires=("beta",))
    with pytest.raises(PluginError) as err:
        await make()
    assert (
        str(err.value) == f"plugin 'beta' {ep('beta', b)}: dependency cycle: beta -> gamma -> beta"
    )


async def test_plugin_requiring_itself(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", requires=("alpha",))
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == f"plugin 'alpha' {ep('alpha', a)}: dependency cycle: alpha -> alpha"


async def test_requires_host_not_satisfied(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", requires_host=">=99")
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: requires host kabinet>=99, "
        "but kabinet 0.1.0 is installed"
    )


async def test_requires_host_invalid_specifier(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", requires_host="newer than 1")
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: requires_host 'newer than 1' is not a PEP 440 "
        "specifier (e.g. '>=0.1,<1')"
    )


async def test_requires_host_satisfied(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("alpha", requires_host=">=0.1,<1")
    host = await make()
    assert "alpha" in host.plugins


# -- two plugins claiming one thing ---------------------------------------------------------

TWO_CLAIMS = {
    "permission": (
        """
        @hookimpl
        def permissions():
            return [Permission(code="alpha.orders.view", label={"ru": "x", "en": "x"})]
        """,
        "permission 'alpha.orders.view'",
    ),
    "event type": (
        """
        @hookimpl
        def event_types():
            return [EventType(name="alpha.order.created")]
        """,
        "event type 'alpha.order.created'",
    ),
    "actor": (
        """
        @hookimpl
        def actors(host):
            return [Actor(name="send_mail", fn=lambda: None)]
        """,
        "actor 'send_mail'",
    ),
    "schedule": (
        """
        @hookimpl
        def actors(host):
            return [Actor(name="tick_" + __name__[-5:], fn=lambda: None)]

        @hookimpl
        def schedules(host):
            return [Schedule(name="nightly", actor="tick_" + __name__[-5:], interval=60)]
        """,
        "schedule 'nightly'",
    ),
    "CLI command": (
        """
        import click

        @click.command("export")
        def export():
            "Export things."

        @hookimpl
        def cli_commands():
            return [export]
        """,
        "CLI command 'export'",
    ),
}


@pytest.mark.parametrize("kind", TWO_CLAIMS)
async def test_two_plugins_claiming_one(
    kind: str, plugin_factory: PluginFactory, make: Make
) -> None:
    body, what = TWO_CLAIMS[kind]
    a = plugin_factory.add("alpha", body)
    b = plugin_factory.add("bravo", body)
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'bravo' {ep('bravo', b)}: {what} is already claimed by plugin 'alpha' "
        f"{ep('alpha', a)}"
    )


async def test_two_plugins_claiming_one_route_prefix(
    plugin_factory: PluginFactory, make: Make
) -> None:
    body = """
        from litestar import Router, get

        @get("/", sync_to_thread=False)
        def index() -> str:
            return "x"

        @hookimpl
        def routers(host):
            return [Router(path="/orders", route_handlers=[index])]
        """
    a = plugin_factory.add("alpha", body)
    b = plugin_factory.add("bravo", body)
    host = await make()
    with pytest.raises(PluginError) as err:
        await collect_routes(host)
    assert str(err.value) == (
        f"plugin 'bravo' {ep('bravo', b)}: route prefix '/orders' is already claimed by "
        f"plugin 'alpha' {ep('alpha', a)}"
    )


async def test_plugin_command_clashing_with_a_host_command(
    plugin_factory: PluginFactory, make: Make
) -> None:
    a = plugin_factory.add(
        "alpha",
        """
        import click

        @hookimpl
        def cli_commands():
            return [click.Command("check")]
        """,
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: CLI command 'check' is the host's own "
        "(choose another name)"
    )


# -- hooks and their arguments --------------------------------------------------------------


async def test_implementation_of_an_unknown_hook(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add(
        "alpha",
        """
        @hookimpl
        def permisions():
            return []
        """,
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: implements unknown hook 'permisions'; "
        "did you mean 'permissions'?"
    )


async def test_implementation_with_an_unknown_argument(
    plugin_factory: PluginFactory, make: Make
) -> None:
    a = plugin_factory.add(
        "alpha",
        """
        @hookimpl
        def actors(hots):
            return []
        """,
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: hook actors: argument 'hots' is not one of the "
        "hook's arguments (host)"
    )


async def test_plugin_that_fails_to_import(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", "import kabinet_no_such_module\n")
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: failed to import: ModuleNotFoundError: "
        "No module named 'kabinet_no_such_module'"
    )


async def test_plugin_without_a_manifest(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", manifest=False)
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == f"plugin 'alpha' {ep('alpha', a)}: implements no manifest hook"


async def test_manifest_name_differs_from_entry_point(
    plugin_factory: PluginFactory, make: Make
) -> None:
    a = plugin_factory.add("alpha", entry_name="alfa")
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alfa' {ep('alfa', a)}: manifest name 'alpha' differs from the entry "
        "point name 'alfa'"
    )


SPECS = """
    "Hooks the alpha plugin publishes for other plugins."

    import pluggy

    hookspec = pluggy.HookspecMarker("kabinet")


    @hookspec
    def alpha_connectors(host):
        "Called at start-up; returns connector names."
    """

PUBLISHER = """
    @hookimpl
    def hookspecs():
        from . import specs

        return specs
    """


def add_publisher(plugin_factory: PluginFactory) -> str:
    return plugin_factory.add("alpha", PUBLISHER, files={"specs.py": SPECS})


async def test_published_hook_implemented_by_another_plugin(
    plugin_factory: PluginFactory, make: Make
) -> None:
    add_publisher(plugin_factory)
    plugin_factory.add(
        "bravo",
        """
        @hookimpl
        async def alpha_connectors(host):
            return ["odata"]
        """,
        requires=("alpha",),
    )
    host = await make()
    results = await host.plugins.acall("alpha_connectors", host=host)
    assert [(r.plugin.name, r.value) for r in results] == [("bravo", ["odata"])]
    assert host.plugins.hooks_of(host.plugins.by_name["bravo"]) == ["alpha_connectors", "manifest"]


async def test_published_hook_with_an_unknown_argument(
    plugin_factory: PluginFactory, make: Make
) -> None:
    add_publisher(plugin_factory)
    b = plugin_factory.add(
        "bravo",
        """
        @hookimpl
        def alpha_connectors(host, region):
            return []
        """,
        requires=("alpha",),
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'bravo' {ep('bravo', b)}: hook alpha_connectors: argument 'region' is not "
        "one of the hook's arguments (host)"
    )


async def test_published_hook_of_a_disabled_plugin_is_unknown(
    plugin_factory: PluginFactory, make: Make
) -> None:
    add_publisher(plugin_factory)
    b = plugin_factory.add(
        "bravo",
        """
        @hookimpl
        def alpha_connectors(host):
            return []
        """,
    )
    with pytest.raises(PluginError) as err:
        await make("[alpha]\nenabled = false\n")
    assert str(err.value) == (
        f"plugin 'bravo' {ep('bravo', b)}: implements unknown hook 'alpha_connectors'"
    )


async def test_hookspecs_hook_returning_junk(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add(
        "alpha",
        """
        @hookimpl
        def hookspecs():
            return 42
        """,
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: hookspecs hook returned 42, not a module"
    )


async def test_published_hook_clashing_with_a_host_hook(
    plugin_factory: PluginFactory, make: Make
) -> None:
    a = plugin_factory.add(
        "alpha",
        PUBLISHER,
        files={
            "specs.py": """
                import pluggy

                hookspec = pluggy.HookspecMarker("kabinet")


                @hookspec
                def actors(host, queue):
                    "Clashes with the host's actors hook."
                """
        },
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: publishes hook 'actors', which already exists"
    )


async def test_hook_wrappers_are_refused(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add(
        "alpha",
        """
        @hookimpl(wrapper=True)
        def permissions():
            return (yield)
        """,
    )
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'alpha' {ep('alpha', a)}: hook permissions: wrappers are not supported; "
        "the host calls each plugin's implementation itself"
    )


# -- enabled, order, async ----------------------------------------------------------------


async def test_disabled_plugin_contributes_nothing(
    plugin_factory: PluginFactory, make: Make, tmp_path: Path
) -> None:
    marker = tmp_path / "called"
    plugin_factory.add(
        "alpha",
        f"""
        from pathlib import Path

        @hookimpl
        def permissions():
            Path({str(marker)!r}).write_text("permissions")
            return [Permission(code="alpha.x.view", label={{"ru": "x", "en": "x"}})]

        @hookimpl
        def startup(host):
            Path({str(marker)!r}).write_text("startup")
        """,
    )
    host = await make("[alpha]\nenabled = false\n")
    await host.startup()
    await host.shutdown()
    assert not marker.exists()
    assert "alpha.x.view" not in host.permissions
    assert "alpha" not in host.plugins
    [alpha] = host.plugins.disabled
    assert (alpha.name, alpha.enabled) == ("alpha", False)


async def test_disabled_plugin_that_is_broken_does_not_stop_start_up(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add("alpha", "import kabinet_no_such_module\n")
    plugin_factory.add(
        "bravo",
        """
        @hookimpl
        def permisions():
            return []
        """,
    )
    host = await make("[alpha]\nenabled = false\n[bravo]\nenabled = false\n")
    alpha, bravo = host.plugins.disabled
    assert (alpha.name, alpha.version) == ("alpha", "?")
    assert alpha.problem == "ModuleNotFoundError: No module named 'kabinet_no_such_module'"
    assert (bravo.name, bravo.version, bravo.problem) == ("bravo", "1.0", "")
    assert "alpha" not in host.plugins
    assert "bravo" not in host.plugins


async def test_builtin_cannot_be_disabled(make: Make) -> None:
    with pytest.raises(PluginError) as err:
        await make("[identity]\nenabled = false\n")
    assert str(err.value) == (
        "plugin 'identity' (entry point builtin kabinet.identity.plugin): is built into the "
        "host and cannot be disabled"
    )


async def test_enabled_must_be_a_bool(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add("alpha")
    with pytest.raises(Exception, match=r"\[alpha\] enabled: expected bool") as err:
        await make('[alpha]\nenabled = "perhaps"\n')
    assert "settings.toml" in str(err.value)


async def test_order_is_dependency_order_then_name(
    plugin_factory: PluginFactory, make: Make
) -> None:
    plugin_factory.add("zulu")
    plugin_factory.add("alpha", requires=("yankee",))
    plugin_factory.add("yankee", requires=("zulu",))
    plugin_factory.add("bravo")
    plugin_factory.add("mike", requires=("bravo",))
    builtins = [name for name, _ in BUILTINS]
    expected = ["bravo", "mike", "zulu", "yankee", "alpha"]
    forward = plugin_factory.candidates()
    assert [c.name for c in forward] == [*builtins, "alpha", "bravo", "mike", "yankee", "zulu"]
    backward = list(reversed(forward))
    for candidates in (forward, backward):
        host = await make(candidates=candidates)
        names = [p.name for p in host.plugins]
        assert sorted(names[: len(builtins)]) == sorted(builtins), "built-ins come first"
        assert names[len(builtins) :] == expected
        results = await host.plugins.acall("manifest")
        assert [r.plugin.name for r in results] == names


async def test_async_implementations_are_awaited(plugin_factory: PluginFactory, make: Make) -> None:
    plugin_factory.add(
        "alpha",
        """
        import asyncio

        @hookimpl
        async def permissions():
            await asyncio.sleep(0)
            return [Permission(code="alpha.orders.view", label={"ru": "x", "en": "x"})]

        @hookimpl
        async def startup(host):
            await asyncio.sleep(0)
            host.services["alpha"] = "started"
        """,
    )
    host = await make()
    assert "alpha.orders.view" in host.permissions
    await host.startup()
    assert host.services["alpha"] == "started"
    await host.shutdown()


async def test_invalid_plugin_name(plugin_factory: PluginFactory, make: Make) -> None:
    a = plugin_factory.add("alpha", entry_name="Alpha-X")
    with pytest.raises(PluginError) as err:
        await make()
    assert str(err.value) == (
        f"plugin 'Alpha-X' {ep('Alpha-X', a)}: a plugin name is lower-case letters, "
        "digits and _, starting with a letter"
    )
