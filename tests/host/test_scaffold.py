"""`kabinet plugin new NAME` writes a plugin that works as soon as it is installed.

The scaffold is run into a temporary folder, and the plugin "installed" for this module
only: its project folder goes on the path and a ``.dist-info`` folder of its own
(``METADATA`` and ``entry_points.txt`` with the ``kabinet.plugins`` entry point) is written
beside it, which is all ``importlib.metadata`` (and so the host) reads. The subprocesses
get both through ``PYTHONPATH``; the in-process portal gets the plugin as a candidate
from that folder alone. Nothing is written into the virtualenv: ``pip install -e`` there
would put the plugin into every other test running at the same time (the route matrix,
the migrated template database of the whole run) and stay behind if the run were killed
before its teardown.

With the plugin: ``kabinet db upgrade`` creates its table on a throwaway database,
``kabinet check`` passes, its page renders in the shell for a person holding its
permission and is refused (403) to one without, its job is scheduled and fires by the
clock, and the generated project's own tests pass under pytest, on the harness.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

import kabinet
from kabinet.cli import cli
from kabinet.clock import FrozenClock
from kabinet.plugins import builtin_candidates, entry_point_candidates
from kabinet.scaffold import blueprint
from kabinet.testing import create_empty_database, drop_database, start_portal

pytestmark = [pytest.mark.smoke, pytest.mark.slow]

NAME = "scaffoldprobe"
"""Fixed, so the generated migrations (and the template database made of them) are too."""
PACKAGE = f"kabinet_{NAME}"
KABINET = str(Path(sys.executable).parent / "kabinet")


@dataclass
class Installed:
    project: Path
    site: Path
    settings: Path
    database_url: str
    env: dict[str, str]

    def kabinet(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KABINET, "--settings", str(self.settings), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def _install(project: Path, site: Path) -> None:
    """The entry point, as an installed distribution records it."""
    plan = blueprint(NAME)
    info = site / f"{PACKAGE}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {plan.dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[kabinet.plugins]\n{NAME} = {PACKAGE}.plugin\n")


def _environment(project: Path, site: Path) -> dict[str, str]:
    """This process's environment without settings of its own, the plugin on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KABINET__") and k not in {"KABINET_SETTINGS", "PYTEST_ADDOPTS"}
    }
    env["PYTHONPATH"] = os.pathsep.join(
        [str(site), str(project), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return env


@pytest.fixture(scope="module")
async def installed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Installed]:
    root = tmp_path_factory.mktemp("scaffold")
    made = CliRunner().invoke(cli, ["plugin", "new", NAME, "--dir", str(root)])
    assert made.exit_code == 0, made.output
    project = root / f"kabinet-{NAME}"
    assert f"wrote {project}" in made.output
    site = root / "site"
    _install(project, site)
    url = await create_empty_database(root)
    # Only the built-ins and the new plugin: the apps of this repository are not its concern.
    others = sorted(c.name for c in entry_point_candidates() if c.name != NAME)
    settings = root / "settings.toml"
    settings.write_text(
        f'[host]\ndatabase_url = "{url}"\nvar_dir = "{root / "var"}"\n'
        'secret_key = "scaffold-tests"\n'
        + "".join(f"[{name}]\nenabled = false\n" for name in others)
    )
    yield Installed(project, site, settings, url, _environment(project, site))
    await drop_database(url)


@pytest.fixture
def on_path(installed: Installed) -> Iterator[list[object]]:
    """The plugin importable in this process, found as a candidate from its folder."""
    sys.path.insert(0, str(installed.project))
    try:
        found = entry_point_candidates(metadata.distributions(path=[str(installed.site)]))
        assert [c.name for c in found] == [NAME]
        yield [*builtin_candidates(), *found]
    finally:
        sys.path.remove(str(installed.project))
        for key in [k for k in sys.modules if k == PACKAGE or k.startswith(PACKAGE + ".")]:
            del sys.modules[key]


def test_the_scaffold_writes_every_part_of_a_plugin(installed: Installed) -> None:
    files = {p.relative_to(installed.project).as_posix() for p in installed.project.rglob("*")}
    package = PACKAGE
    for part in (
        "pyproject.toml",
        "README.md",
        f"{package}/plugin.py",
        f"{package}/settings.py",
        f"{package}/models.py",
        f"{package}/services.py",
        f"{package}/pages.py",
        f"{package}/jobs.py",
        f"{package}/commands.py",
        f"{package}/texts.py",
        f"{package}/templates/{NAME}/index.html",
        f"tests/test_{NAME}.py",
    ):
        assert part in files
    assert [f for f in files if f.startswith(f"{package}/migrations/") and f.endswith(".py")]
    pyproject = (installed.project / "pyproject.toml").read_text()
    assert f'[project.entry-points."kabinet.plugins"]\n{NAME} = "{PACKAGE}.plugin"' in pyproject
    assert "$" not in "".join(
        p.read_text() for p in installed.project.rglob("*") if p.is_file()
    )  # every placeholder filled


def test_the_generated_code_passes_ruff(installed: Installed) -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=installed.project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_generated_code_imports_only_the_hosts_public_api(installed: Installed) -> None:
    imported: set[str] = set()
    for path in installed.project.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    host = {m for m in imported if m == "kabinet" or m.startswith("kabinet.")}
    assert host, imported
    assert host <= set(kabinet.PUBLIC_MODULES), host - set(kabinet.PUBLIC_MODULES)


def test_migrate_then_check_with_the_plugin_installed(installed: Installed) -> None:
    upgraded = installed.kabinet("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    revision = blueprint(NAME).revision
    assert f"{NAME}: {revision}" in upgraded.stdout

    checked = installed.kabinet("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f", {NAME})" in checked.stdout  # "plugins: ok (host, …, scaffoldprobe)"
    assert "migrations: up to date" in checked.stdout

    listed = installed.kabinet("plugins")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(NAME))
    for hook in ("cli_commands", "database", "permissions", "routers", "schedules"):
        assert hook in row
    helped = installed.kabinet("--help")
    assert f"{NAME}-note" in helped.stdout


async def test_the_page_renders_in_the_shell_for_the_permitted_only(
    installed: Installed, on_path: list[object], tmp_path: Path
) -> None:
    assert installed.kabinet("db", "upgrade").returncode == 0  # whatever ran first
    clock = FrozenClock()  # 2026-01-15 09:00 UTC, 12:00 in Moscow
    portal = await start_portal(
        tmp_path,
        installed.database_url,
        clock=clock,
        candidates=on_path,  # type: ignore[arg-type]
        settings={"host": {"timezone": "Europe/Moscow"}},  # where "30 2 * * *" is read
    )
    try:
        organization = portal.organization_id()
        permitted = await portal.signed_in(await portal.person("client", organization=organization))
        refused = await portal.signed_in(await portal.person(organization=organization))

        page = await permitted.get(f"/{NAME}/")
        assert page.status_code == 200
        assert 'class="topbar"' in page.text  # the shell's header
        assert "<h1>Заметки</h1>" in page.text
        assert f'href="/{NAME}/"' in page.text  # its navigation item
        assert (await refused.get(f"/{NAME}/")).status_code == 403
        assert await portal.route_faults(f"/{NAME}") == []

        plugin, schedule = portal.host.schedules[f"{NAME}.prune-nightly"]
        assert (plugin.name, schedule.actor, schedule.cron) == (NAME, f"{NAME}.prune", "30 2 * * *")
        assert f"{NAME}.prune" in portal.host.actors
        scheduler = portal.scheduler()
        clock.advance(hours=14)  # 02:00 the next night in Moscow
        assert f"{NAME}.prune-nightly" not in [t.schedule for t in await scheduler.tick()]
        clock.advance(minutes=30)
        fired = [t.schedule for t in await scheduler.tick() if t.fired]
        assert f"{NAME}.prune-nightly" in fired
        assert await portal.drain() >= 1
    finally:
        await portal.aclose()


def test_the_generated_tests_pass(installed: Installed) -> None:
    project = installed.project
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(project / "pyproject.toml"),
            "--rootdir",
            str(project),
            str(project / "tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            f"kabinet_plugins={NAME}",
            "-W",
            "ignore::DeprecationWarning",
        ],
        cwd=project,
        env=installed.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Fuel"], "Invalid value for NAME: 'Fuel' is not a plugin name"),
        (["fuel__x"], "is not a plugin name"),
        (["roles"], "'roles' is the name of a built-in plugin"),
        (["companies"], "a plugin named 'companies' is installed already"),
        (["class"], "'class' is a Python keyword"),
    ],
)
def test_a_name_the_host_would_refuse_is_refused_first(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = CliRunner().invoke(cli, ["plugin", "new", *args, "--dir", str(tmp_path)])
    assert done.exit_code == 2
    assert message in done.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "kabinet-fuel").mkdir()
    (tmp_path / "kabinet-fuel" / "mine.txt").write_text("keep")
    done = CliRunner().invoke(cli, ["plugin", "new", "fuel", "--dir", str(tmp_path)])
    assert done.exit_code == 2
    assert "Invalid value for --dir" in done.output
    assert "exists and is not empty" in done.output
    assert [p.name for p in (tmp_path / "kabinet-fuel").iterdir()] == ["mine.txt"]


def test_the_hosts_wheel_carries_the_templates(tmp_path: Path) -> None:
    """The scaffold reads its templates from the installed package: hatchling ships every
    file of ``kabinet/`` (no VCS ignore covers them); a build proves it."""
    host = Path(__file__).resolve().parents[2] / "host"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(host),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("kabinet-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = host / "kabinet"
    wanted = {
        f"kabinet/{p.relative_to(package).as_posix()}"
        for p in (package / "scaffold_templates").rglob("*.tmpl")
    }
    assert len(wanted) >= 15
    assert wanted <= names, wanted - names
