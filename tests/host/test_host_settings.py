"""settings.toml plus KABINET__SECTION__KEY overrides: which file, typed overrides, and
clear messages for every fault (file, key path, expected type, value received)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kabinet.errors import SettingsError
from kabinet.host import Host
from kabinet.plugins import entry_point_candidates
from kabinet.settings import HostSettings, load, load_raw
from kabinet.testing import PluginFactory

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "settings.example.toml"

Write = Callable[..., Path]

# A plugin whose settings have nested tables, lists and a table of tables.
MAILER = """
    from typing import Literal

    import msgspec

    class Smtp(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        host: str = "localhost"
        port: int = 25
        tls: bool = False

    class Route(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        queue: str
        weight: int = 1

    class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
        smtp: Smtp = msgspec.field(default_factory=Smtp)
        retries: int = 3
        mode: Literal["smtp", "log"] = "smtp"
        recipients: list[str] = msgspec.field(default_factory=list)
        routes: dict[str, Route] = msgspec.field(default_factory=dict)

    @hookimpl
    def manifest():
        return Manifest(name="mailer", version="1.0", title={"ru": "m", "en": "m"},
                        settings=Settings)
    """


@pytest.fixture
def mailer(plugin_factory: PluginFactory) -> PluginFactory:
    plugin_factory.add("mailer", MAILER, manifest=False)
    return plugin_factory


async def host_with(
    factory: PluginFactory, path: Path | None, env: dict[str, str] | None = None
) -> Host:
    host = await Host.create(path, env=env or {}, candidates=factory.candidates())
    await host.db.dispose()
    return host


async def refusal(
    factory: PluginFactory, path: Path | None, env: dict[str, str] | None = None
) -> str:
    with pytest.raises(SettingsError) as err:
        await host_with(factory, path, env)
    return str(err.value)


# -- which file ---------------------------------------------------------------------------


def test_explicit_path_wins_over_the_environment(write_settings: Write, tmp_path: Path) -> None:
    chosen = write_settings('[host]\nbase_url = "https://chosen.example"\n')
    other = tmp_path / "other.toml"
    other.write_text('[host]\nbase_url = "https://other.example"\n')
    settings = load(chosen, {"KABINET_SETTINGS": str(other)})
    assert settings.raw.path == chosen
    assert settings.host.base_url == "https://chosen.example"


def test_kabinet_settings_variable_chooses_the_file(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[host]\nbase_url = "https://other.example"\n')
    settings = load(None, {"KABINET_SETTINGS": str(other)})
    assert settings.raw.path == other
    assert settings.host.base_url == "https://other.example"


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load(None, {})
    assert settings.raw.path is None
    assert settings.host == HostSettings()


def test_settings_toml_in_the_current_folder(
    write_settings: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings("[host]\ndebug = true\n")
    monkeypatch.chdir(tmp_path)
    assert load(None, {}).host.debug is True


def test_missing_explicit_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError) as err:
        load(missing, {})
    assert str(err.value) == f"{missing}: settings file not found"
    with pytest.raises(SettingsError) as err:
        load(None, {"KABINET_SETTINGS": str(missing)})
    assert str(err.value) == f"{missing}: settings file not found"


def test_invalid_toml(write_settings: Write) -> None:
    path = write_settings("[host]\ndebug = \n")
    with pytest.raises(SettingsError) as err:
        load(path, {})
    assert str(err.value).startswith(f"{path}: not valid TOML: ")
    assert "line 2" in str(err.value)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes('[host]\nlanguage = "рус"\n'.encode("cp1251"))
    with pytest.raises(SettingsError) as err:
        load(path, {})
    assert str(err.value) == f"{path}: not valid TOML: the file is not UTF-8"


def test_section_that_is_not_a_table(write_settings: Write) -> None:
    path = write_settings('host = "x"\n')
    with pytest.raises(SettingsError) as err:
        load(path, {})
    assert str(err.value) == f"{path}: host: expected a [host] table, got 'x'"


# -- environment overrides ---------------------------------------------------------------


def test_environment_overrides_keys_with_typed_values(write_settings: Write) -> None:
    path = write_settings(
        """
        [host]
        debug = false
        languages = ["ru"]
        """
    )
    env = {
        "KABINET__HOST__DEBUG": "true",
        "KABINET__HOST__LANGUAGES": '["en", "ru"]',
        "KABINET__HOST__SECRET_KEY": "from-the-environment",
        "UNRELATED": "x",
    }
    host = load(path, env).host
    assert host.debug is True
    assert host.languages == ["en", "ru"]
    assert host.secret_key == "from-the-environment"


@pytest.mark.parametrize(("text", "value"), [("0", False), ("false", False), ("1", True)])
def test_environment_bools(text: str, value: bool) -> None:
    assert load(None, {"KABINET__HOST__DEBUG": text, "KABINET_SETTINGS": ""}).host.debug is value


async def test_environment_overrides_nested_plugin_keys(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings(
        """
        [mailer]
        retries = 1
        [mailer.smtp]
        host = "smtp.example"
        [mailer.routes.bulk]
        queue = "slow"
        """
    )
    env = {
        "KABINET__MAILER__RETRIES": "7",
        "KABINET__MAILER__SMTP__PORT": "587",
        "KABINET__MAILER__SMTP__TLS": "true",
        "KABINET__MAILER__RECIPIENTS": '["ops@example.com"]',
        "KABINET__MAILER__ROUTES__BULK__WEIGHT": "5",
        "KABINET__MAILER__ENABLED": "true",
    }
    host = await host_with(mailer, path, env)
    mailer_settings: Any = host.plugin_settings("mailer")
    assert (mailer_settings.smtp.host, mailer_settings.smtp.port) == ("smtp.example", 587)
    assert mailer_settings.smtp.tls is True
    assert mailer_settings.retries == 7
    assert mailer_settings.recipients == ["ops@example.com"]
    assert (mailer_settings.routes["bulk"].queue, mailer_settings.routes["bulk"].weight) == (
        "slow",
        5,
    )


async def test_environment_disables_a_plugin(mailer: PluginFactory) -> None:
    host = await host_with(mailer, None, {"KABINET__MAILER__ENABLED": "false"})
    assert "mailer" not in host.plugins
    assert [p.name for p in host.plugins.disabled] == ["mailer"]


def test_environment_variable_without_a_key() -> None:
    with pytest.raises(SettingsError) as err:
        load_raw(None, {"KABINET__HOST": "x"})
    assert str(err.value) == (
        "environment variable KABINET__HOST: expected KABINET__<SECTION>__<KEY>"
    )


def test_environment_key_below_a_value(write_settings: Write) -> None:
    path = write_settings("[host]\ndebug = true\n")
    with pytest.raises(SettingsError) as err:
        load_raw(path, {"KABINET__HOST__DEBUG__X": "1"})
    assert str(err.value) == (
        "environment variable KABINET__HOST__DEBUG__X: [host] debug.x is not a table"
    )


# -- bad values ----------------------------------------------------------------------------


def test_bad_value_in_the_file(write_settings: Write) -> None:
    path = write_settings('[host]\ndebug = "perhaps"\n')
    with pytest.raises(SettingsError) as err:
        load(path, {})
    assert str(err.value) == f"{path}: [host] debug: expected bool, got 'perhaps' (str)"


async def test_bad_value_from_the_environment_names_the_variable(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings("[mailer]\nretries = 5\n")
    assert await refusal(mailer, path, {"KABINET__MAILER__RETRIES": "lots"}) == (
        "environment variable KABINET__MAILER__RETRIES (key [mailer] retries): "
        "expected int, got 'lots' (str)"
    )


def test_bad_list_item_from_the_environment_names_the_variable() -> None:
    with pytest.raises(SettingsError) as err:
        load(None, {"KABINET__HOST__LANGUAGES": '["ru", 5]', "KABINET_SETTINGS": ""})
    assert str(err.value) == (
        "environment variable KABINET__HOST__LANGUAGES (key [host] languages.1): "
        "expected str, got 5 (int)"
    )


def test_list_expected_but_text_given() -> None:
    with pytest.raises(SettingsError) as err:
        load(None, {"KABINET__HOST__LANGUAGES": "ru,en", "KABINET_SETTINGS": ""})
    assert str(err.value) == (
        "environment variable KABINET__HOST__LANGUAGES (key [host] languages): "
        "expected array, got 'ru,en' (str)"
    )


async def test_value_outside_a_choice(mailer: PluginFactory, write_settings: Write) -> None:
    path = write_settings('[mailer]\nmode = "pigeon"\n')
    assert await refusal(mailer, path) == (
        f"{path}: [mailer] mode: expected one of 'log', 'smtp', got 'pigeon'"
    )


async def test_bad_nested_value_names_the_key_path(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings('[mailer.smtp]\nport = "twenty-five"\n')
    assert await refusal(mailer, path) == (
        f"{path}: [mailer] smtp.port: expected int, got 'twenty-five' (str)"
    )


async def test_bad_value_inside_a_table_of_tables_names_its_key(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings(
        """
        [mailer.routes.bulk]
        queue = "slow"
        [mailer.routes.urgent]
        queue = "fast"
        weight = "high"
        """
    )
    assert await refusal(mailer, path) == (
        f"{path}: [mailer] routes.urgent.weight: expected int, got 'high' (str)"
    )


async def test_missing_required_key(mailer: PluginFactory, write_settings: Write) -> None:
    path = write_settings("[mailer.routes.bulk]\nweight = 2\n")
    assert await refusal(mailer, path) == (
        f"{path}: [mailer] routes.bulk.queue: required key is missing"
    )


# -- unknown keys and sections ------------------------------------------------------------


def test_unknown_key_suggests_the_closest(write_settings: Write) -> None:
    path = write_settings('[host]\ndatabse_url = "sqlite+aiosqlite:///x"\n')
    with pytest.raises(SettingsError) as err:
        load(path, {})
    assert (
        str(err.value) == f"{path}: [host] databse_url: unknown key; did you mean 'database_url'?"
    )


def test_unknown_key_from_the_environment(write_settings: Write) -> None:
    with pytest.raises(SettingsError) as err:
        load(None, {"KABINET__HOST__DEBUGG": "true", "KABINET_SETTINGS": ""})
    assert str(err.value) == (
        "environment variable KABINET__HOST__DEBUGG (key [host] debugg): unknown key; "
        "did you mean 'debug'?"
    )


async def test_unknown_nested_key_suggests_the_closest(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings("[mailer.smtp]\nprot = 25\n")
    assert await refusal(mailer, path) == (
        f"{path}: [mailer] smtp.prot: unknown key; did you mean 'port'?"
    )


async def test_unknown_key_without_a_close_one_lists_the_known(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings("[mailer.smtp]\nzzz = 1\n")
    assert await refusal(mailer, path) == (
        f"{path}: [mailer] smtp.zzz: unknown key (known keys: host, port, tls)"
    )


def test_host_cannot_be_disabled(write_settings: Write) -> None:
    path = write_settings("[host]\nenabled = false\n")
    with pytest.raises(SettingsError) as err:
        load(path, {})
    assert str(err.value) == f"{path}: [host] enabled: unknown key; the host is always enabled"


async def test_unknown_section_suggests_the_closest_plugin(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings("[mailr]\nretries = 1\n")
    assert await refusal(mailer, path) == (
        f"{path}: [mailr]: no installed plugin has this name; did you mean [mailer]?"
    )


async def test_unknown_section_from_the_environment(mailer: PluginFactory) -> None:
    message = await refusal(mailer, None, {"KABINET__MAILR__RETRIES": "1"})
    assert message == (
        "environment variable KABINET__MAILR__RETRIES: [mailr]: no installed plugin has this "
        "name; did you mean [mailer]?"
    )


async def test_unknown_section_without_a_close_plugin_lists_them(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings("[zzz]\nx = 1\n")
    message = await refusal(mailer, path)
    assert message.startswith(f"{path}: [zzz]: no installed plugin has this name (installed: ")
    assert "mailer" in message


async def test_section_of_a_disabled_plugin_is_still_known(
    mailer: PluginFactory, write_settings: Write
) -> None:
    path = write_settings("[mailer]\nenabled = false\nretries = 9\n")
    host = await host_with(mailer, path)
    assert "mailer" not in host.plugins


# -- settings.example.toml ----------------------------------------------------------------


# settings.toml at the root is what `kabinet demo` and `kabinet serve` read when run there;
# it shows the same defaults, with comments, as the reference.
SHOWN = pytest.mark.parametrize("shown", [EXAMPLE, ROOT / "settings.toml"], ids=lambda p: p.name)


@SHOWN
def test_example_settings_validate(shown: Path) -> None:
    settings = load(shown, {})
    assert settings.host == HostSettings(), "the example shows the defaults"


@SHOWN
def test_example_settings_show_every_host_key(shown: Path) -> None:
    data = tomllib.loads(shown.read_text(encoding="utf-8"))
    missing = set(HostSettings.__struct_fields__) - set(data["host"])
    assert not missing, f"add these [host] keys to settings.example.toml: {sorted(missing)}"


def test_root_settings_is_the_host_section_of_the_example() -> None:
    """settings.toml at the root holds [host] only (a section of an app that is not installed
    would stop start-up), with the same keys and comments as the reference."""
    data = tomllib.loads((ROOT / "settings.toml").read_text(encoding="utf-8"))
    assert list(data) == ["host"]
    example = EXAMPLE.read_text(encoding="utf-8")
    host = example.split("\n[host]\n", 1)[1].split("\n[", 1)[0].rstrip().rsplit("\n\n", 1)[0]
    assert host.strip() in (ROOT / "settings.toml").read_text(encoding="utf-8")


async def test_example_settings_show_every_installed_plugin_and_key(tmp_path: Path) -> None:
    """Each installed plugin has a section with all its keys at their defaults, and
    ``enabled = true`` unless it is built in (built-ins cannot be disabled)."""
    shown = EXAMPLE
    data = tomllib.loads(shown.read_text(encoding="utf-8"))
    env = {"KABINET__HOST__DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}"}
    host = await Host.create(shown, env=env)
    await host.db.dispose()
    for plugin in host.plugins.installed:
        if plugin.name == "host":
            continue
        struct = plugin.manifest.settings
        if plugin.builtin and not struct.__struct_fields__:
            continue  # a built-in without settings needs no section
        section = data.get(plugin.name)
        assert section is not None, f"settings.example.toml has no [{plugin.name}] section"
        if plugin.builtin:
            assert "enabled" not in section, f"[{plugin.name}] is built in: no enabled key"
        else:
            assert section.get("enabled") is True, f"[{plugin.name}] shows no enabled = true"
        missing = set(struct.__struct_fields__) - set(section)
        assert not missing, f"add to [{plugin.name}] in settings.example.toml: {sorted(missing)}"
        defaults = msgspec.convert({}, struct)
        assert host.plugin_settings(plugin.name) == defaults, f"[{plugin.name}] shows defaults"
    assert {c.name for c in entry_point_candidates()} <= set(data)
