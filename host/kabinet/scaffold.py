"""``kabinet plugin new NAME``: write a working plugin distribution to start from.

The files come from the templates in ``kabinet/scaffold_templates/`` (package data):
``${name}``-style placeholders in their text (:class:`string.Template`), and ``__package__``
and ``__name__`` in their paths. The result has everything a plugin of this portal has
(manifest, settings struct, a table and its first migration, a permission, a page in the
shell, a job on a schedule, a command, a test on the harness, a README) and passes its
test and ``kabinet check`` as soon as it is installed (``tests/host/test_scaffold.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import keyword
import re
import string
from pathlib import Path

import kabinet
from kabinet.plugins import BUILTINS, entry_point_candidates

TEMPLATES = Path(__file__).parent / "scaffold_templates"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MAX_NAME = 20


class ScaffoldError(ValueError):
    """A name or a folder the scaffold refuses; the message says why, ``field`` what."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class Blueprint:
    """The names one plugin is made of, all derived from its name."""

    name: str
    """The plugin's name: entry point, settings section, table and route prefix."""
    title_ru: str
    title_en: str

    @property
    def package(self) -> str:
        return f"kabinet_{self.name}"

    @property
    def dist(self) -> str:
        return f"kabinet-{self.name.replace('_', '-')}"

    @property
    def command(self) -> str:
        return f"{self.name.replace('_', '-')}-note"

    @property
    def revision(self) -> str:
        """The first migration's id: from the name, so a scaffold is reproducible."""
        return hashlib.sha256(f"kabinet-scaffold:{self.name}".encode()).hexdigest()[:12]

    def values(self) -> dict[str, str]:
        return {
            "name": self.name,
            "package": self.package,
            "dist": self.dist,
            "command": self.command,
            "revision": self.revision,
            "title_ru": self.title_ru,
            "title_en": self.title_en,
            "host_version": ".".join(kabinet.__version__.split(".")[:2]),
        }


def blueprint(name: str, title_ru: str | None = None, title_en: str | None = None) -> Blueprint:
    """Check ``name`` the way the host will check the plugin, and derive the rest."""
    if not NAME_RE.match(name) or len(name) > MAX_NAME:
        raise ScaffoldError(
            f"{name!r} is not a plugin name: lower-case latin letters and digits, words "
            f"joined by single '_', starting with a letter, at most {MAX_NAME} characters"
        )
    taken = {n for n, _ in BUILTINS}
    if name in taken:
        builtins = ", ".join(sorted(taken))
        raise ScaffoldError(f"{name!r} is the name of a built-in plugin ({builtins})")
    if name in {c.name for c in entry_point_candidates()}:
        raise ScaffoldError(f"a plugin named {name!r} is installed already")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword")
    default = name.replace("_", " ").capitalize()
    for label in (title_ru, title_en):
        if label is not None and ('"' in label or "\\" in label or "\n" in label):
            raise ScaffoldError(f"title {label!r}: no quotes, backslashes or line breaks", "title")
    return Blueprint(name=name, title_ru=title_ru or default, title_en=title_en or default)


def render(plan: Blueprint) -> dict[str, str]:
    """The files of the plugin: relative path -> text."""
    values = plan.values()
    found: dict[str, str] = {}
    for source in sorted(TEMPLATES.rglob("*.tmpl")):
        rel = source.relative_to(TEMPLATES).as_posix().removesuffix(".tmpl")
        rel = rel.replace("__package__", plan.package).replace("__name__", plan.name)
        rel = rel.replace("__revision__", plan.revision)
        found[rel] = string.Template(source.read_text(encoding="utf-8")).substitute(values)
    return found


def create(
    name: str, parent: Path, *, title_ru: str | None = None, title_en: str | None = None
) -> Path:
    """Write plugin ``name`` into ``parent/kabinet-<name>``; returns that folder.

    Refuses a folder that exists and is not empty (nothing is overwritten)."""
    plan = blueprint(name, title_ru, title_en)
    target = parent / plan.dist
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not empty: choose another folder", "dir")
    for rel, text in render(plan).items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
