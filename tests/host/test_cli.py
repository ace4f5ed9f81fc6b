"""The ``kabinet`` command: listing plugins, ``check``, ``db …``, help, usage errors and
plugin commands, through click's runner and through the real installed script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from kabinet.cli import cli
from kabinet.testing import PluginFactory

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
KABINET = Path(sys.executable).parent / "kabinet"

ALPHA = """
    import click
    from pathlib import Path

    from kabinet.db import plugin_metadata
    from sqlalchemy import Column, Integer, String, Table

    metadata = plugin_metadata()
    Table("alpha_item", metadata, Column("id", Integer, primary_key=True),
          Column("title", String(100), nullable=False))


    @click.command("alpha-hello")
    @click.argument("who")
    @click.option("--shout", is_flag=True, help="Say it loudly.")
    def hello(who, shout):
        "Greet WHO from the alpha plugin."
        text = f"hello {who} from alpha"
        click.echo(text.upper() if shout else text)


    @hookimpl
    def cli_commands():
        return [hello]


    @hookimpl
    def database():
        return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")


    @hookimpl
    def permissions():
        return [Permission(code="alpha.items.view", label={"ru": "x", "en": "x"})]
    """

BETA = """
    import click

    @click.command("beta-hello")
    def hello():
        "Never shown: beta is disabled."

    @hookimpl
    def cli_commands():
        return [hello]
    """


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[host]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path / "k.sqlite3"}"\n')
    return path


@pytest.fixture
def plugins(plugin_factory: PluginFactory, settings: Path) -> PluginFactory:
    """alpha (tables, a command) and beta (disabled), found on sys.path like installed ones."""
    plugin_factory.add("alpha", ALPHA, files={"migrations/.keep": ""})
    plugin_factory.add("beta", BETA, requires=("alpha",))
    settings.write_text(settings.read_text() + "\n[beta]\nenabled = false\n")
    return plugin_factory


def invoke(settings: Path | None, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``kabinet [--settings S] ARGS`` in-process; a traceback would fail the test."""
    runner = CliRunner()
    head = ["--settings", str(settings)] if settings else []
    result = runner.invoke(cli, [*head, *args], env=env, prog_name="kabinet")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


# -- kabinet plugins ---------------------------------------------------------------------------


def test_plugins_lists_name_version_enabled_requires_hooks(
    plugins: PluginFactory, settings: Path
) -> None:
    plugins.add("gamma", "import kabinet_no_such_module\n")
    settings.write_text(settings.read_text() + "\n[gamma]\nenabled = false\n")
    result = invoke(settings, "plugins")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "ENABLED", "REQUIRES", "HOOKS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["alpha"].split() == [
        "alpha",
        "1.0",
        "yes",
        "-",
        "cli_commands,",
        "database,",
        "manifest,",
        "permissions",
    ]
    assert rows["beta"].split() == ["beta", "1.0", "no", "alpha", "-"]
    assert rows["gamma"].split()[:4] == ["gamma", "?", "no", "-"]
    assert rows["gamma"].endswith(
        "(cannot load: ModuleNotFoundError: No module named 'kabinet_no_such_module')"
    )
    assert rows["host"].split()[:3] == ["host", "0.1.0", "yes"]
    for name in ("companies", "dictionaries", "notifications", "integration", "shipments"):
        assert name in rows, f"installed plugin {name} missing from `kabinet plugins`"
    assert rows["integration"].split()[3:5] == ["companies,", "shipments"]


# -- kabinet check -----------------------------------------------------------------------------


def test_check_ok(plugins: PluginFactory, settings: Path) -> None:
    result = invoke(settings, "check")
    assert result.exit_code == 0, result.output
    assert f"settings: ok ({settings})" in result.output
    assert "plugins: ok (host, " in result.output
    assert "alpha" in result.output.split("plugins: ok")[1].splitlines()[0]
    assert "host.database: ok" in result.output
    assert "migrations: companies is at base, head is " in result.output


def test_check_refuses_bad_settings(settings: Path) -> None:
    settings.write_text('[host]\ndebug = "sometimes"\n')
    result = invoke(settings, "check")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {settings}: [host] debug: expected bool, got 'sometimes' (str)\n"
    )


def test_check_refuses_a_broken_plugin(plugin_factory: PluginFactory, settings: Path) -> None:
    module = plugin_factory.add("alpha", requires=("nowhere",))
    result = invoke(settings, "check")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: plugin 'alpha' (entry point alpha = {module}): requires plugin 'nowhere', "
        "which is not installed\n"
    )


def test_check_unreachable_database(settings: Path) -> None:
    env = {"KABINET__HOST__DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"}
    result = invoke(settings, "check", env=env)
    assert result.exit_code == 2
    assert "host.database: FAILED: ConnectionRefusedError" in result.output
    assert result.output.endswith("Error: the portal is not ready (see above)\n")


def test_db_command_with_unreachable_database(settings: Path) -> None:
    env = {"KABINET__HOST__DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"}
    result = invoke(settings, "db", "current", env=env)
    assert result.exit_code == 2
    assert result.output.startswith("Error: cannot connect to the database: ")


# -- kabinet db --------------------------------------------------------------------------------


def test_db_revision_upgrade_current_downgrade(plugins: PluginFactory, settings: Path) -> None:
    versions = plugins.site / f"{plugins.prefix}_alpha" / "migrations"
    result = invoke(settings, "db", "revision", "alpha", "-m", "create items")
    assert result.exit_code == 0, result.output
    [written] = list(versions.glob("*.py"))
    assert result.output.endswith(f"wrote {written}\n")
    text = written.read_text()
    assert "create_table('alpha_item'" in text or 'create_table("alpha_item"' in text
    assert "companies_" not in text, "autogenerate wrote another plugin's tables"
    [revision] = re.findall(r"^Revision ID: (\w+)$", text, re.M)
    assert revision in written.name

    result = invoke(settings, "db", "upgrade", "alpha")
    assert result.exit_code == 0, result.output
    assert result.output == f"alpha: {revision}\n"

    result = invoke(settings, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "companies: " in result.output

    result = invoke(settings, "db", "current")
    assert result.exit_code == 0, result.output
    assert f"alpha: {revision} (up to date)" in result.output.splitlines()
    assert all(line.endswith("(up to date)") for line in result.output.splitlines())

    result = invoke(settings, "db", "downgrade", "alpha", "base")
    assert result.exit_code == 0, result.output
    assert result.output == "alpha: base\n"
    result = invoke(settings, "db", "current")
    assert f"alpha: base (head is {revision})" in result.output.splitlines()


def test_db_downgrade_refused_while_required(settings: Path) -> None:
    assert invoke(settings, "db", "upgrade").exit_code == 0
    result = invoke(settings, "db", "downgrade", "companies", "base")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")
    assert "enabled plugins require it" in result.output


def test_db_unknown_plugin(settings: Path) -> None:
    result = invoke(settings, "db", "upgrade", "nosuch")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")
    assert "nosuch" in result.output


# -- help and usage --------------------------------------------------------------------------


def _all_commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()) -> list:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, ctx, (*path, name)))
    return found


def test_every_command_has_useful_help(settings: Path) -> None:
    with click.Context(cli, info_name="kabinet") as ctx:
        commands = _all_commands(cli, ctx)
    names = {" ".join(path) for path, _ in commands}
    assert {"plugins", "check", "db", "db upgrade", "db downgrade", "db current"} <= names
    assert {"db revision", "serve", "demo"} <= names
    for path, command in commands:
        result = invoke(settings, *path, "--help")
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: kabinet {' '.join(path)} ")
        summary = (command.help or "").strip().splitlines()
        assert summary, f"`kabinet {' '.join(path)}` has no help"
        assert len(summary[0]) > 15, f"`kabinet {' '.join(path)}` has no real help"
        assert summary[0] in result.output
    main = invoke(settings, "--help")
    assert main.exit_code == 0
    assert "KABINET__<SECTION>__<KEY>" in main.output
    for path, _ in commands:
        if len(path) == 1:
            assert path[0] in main.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch",), "Error: No such command 'nosuch'."),
        (("db", "downgrade"), "Error: Missing argument 'PLUGIN'."),
        (("db", "downgrade", "companies"), "Error: Missing argument 'REVISION'."),
        (("db", "revision", "companies"), "Error: Missing option '-m' / '--message'."),
        (("serve", "--port", "0"), "Error: Invalid value for '--port': 0 is not in the range"),
        (("plugins", "--verbose"), "Error: No such option '--verbose'."),
    ],
)
def test_wrong_arguments_give_a_usage_message(
    settings: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke(settings, *args)
    assert result.exit_code == 2
    assert "Usage: kabinet" in result.output
    assert message in result.output


# -- plugin commands ---------------------------------------------------------------------------


def test_plugin_commands_appear_and_run(plugins: PluginFactory, settings: Path) -> None:
    main = invoke(settings, "--help")
    assert "alpha-hello" in main.output
    assert "Greet WHO from the alpha plugin." in main.output
    assert "beta-hello" not in main.output, "a disabled plugin contributes no command"
    result = invoke(settings, "alpha-hello", "ada", "--shout")
    assert result.exit_code == 0, result.output
    assert result.output == "HELLO ADA FROM ALPHA\n"
    help_ = invoke(settings, "alpha-hello", "--help")
    assert "Say it loudly." in help_.output
    missing = invoke(settings, "beta-hello")
    assert missing.exit_code == 2
    assert "No such command 'beta-hello'" in missing.output


def test_plugin_command_clashing_with_a_host_command(
    plugin_factory: PluginFactory, settings: Path
) -> None:
    module = plugin_factory.add(
        "alpha",
        """
        import click

        @hookimpl
        def cli_commands():
            return [click.Command("check", help="Not the host's check.")]
        """,
    )
    expected = (
        f"Error: plugin 'alpha' (entry point alpha = {module}): CLI command 'check' is the "
        "host's own (choose another name)\n"
    )
    result = invoke(settings, "check")
    assert result.exit_code == 2
    assert result.output == expected
    # The main help still works, and says why plugin commands are missing.
    main = invoke(settings, "--help")
    assert main.exit_code == 0
    assert "Plugin commands are unavailable: plugin 'alpha'" in main.output


# -- the real script ---------------------------------------------------------------------------


def start_script(*args: str, cwd: Path, extra_path: Path | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET")}
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.Popen(
        [str(KABINET), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_real_script_exit_codes_and_no_traceback(plugins: PluginFactory, settings: Path) -> None:
    bad = settings.parent / "bad.toml"
    bad.write_text("[host]\ndatabse_url = 1\n")
    # Both start at once: each spends most of its time importing.
    ok = start_script("alpha-hello", "world", cwd=settings.parent, extra_path=plugins.site)
    refused = start_script("--settings", str(bad), "check", cwd=settings.parent)
    out, err = ok.communicate(timeout=60)
    assert (ok.returncode, out, err) == (0, "hello world from alpha\n", "")
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2
    assert out == ""
    assert err == f"Error: {bad}: [host] databse_url: unknown key; did you mean 'database_url'?\n"
