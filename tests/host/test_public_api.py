"""The host's public API: ``kabinet.__all__``, what docs/plugins.md lists, and the
deprecation path of a public name (docs/plugins.md, "The host's public API and how it
changes")."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kabinet

pytestmark = pytest.mark.smoke

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
NAMES = [n for n in kabinet.__all__ if n not in {"PUBLIC_MODULES", "__version__"}]


def _section() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## The host's public API and how it changes")
    return text[start : text.index("\n## ", start + 1)]


def test_every_public_name_is_the_object_of_its_module() -> None:
    assert len(set(kabinet.__all__)) == len(kabinet.__all__)
    assert set(NAMES) == set(kabinet._PUBLIC)
    for name in NAMES:
        module = importlib.import_module(kabinet._PUBLIC[name])
        assert getattr(kabinet, name) is getattr(module, name), name
        assert module.__name__ in kabinet.PUBLIC_MODULES
    with pytest.raises(AttributeError, match="no attribute 'Shell'"):
        _ = kabinet.Shell  # type: ignore[attr-defined]  # internal: kabinet.pages.Shell


def test_the_docs_list_every_public_name_and_module_with_its_module() -> None:
    rows = {
        m["module"]: m["names"]
        for m in re.finditer(
            r"^\| `(?P<module>kabinet\.\w+)` \| (?P<names>.*) \|$", _section(), re.M
        )
    }
    assert set(rows) == set(kabinet.PUBLIC_MODULES)
    for name in NAMES:
        assert f"`{name}`" in rows[kabinet._PUBLIC[name]], f"{name} is not in its module's row"


def test_a_deprecated_name_still_works_and_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kabinet._DEPRECATED, "OldClock", ("kabinet.clock", "FrozenClock", "0.1"))
    with pytest.warns(DeprecationWarning, match=r"deprecated since 0\.1: use kabinet\.clock\."):
        old = kabinet.OldClock  # type: ignore[attr-defined]
    assert old is kabinet.FrozenClock


def test_importing_kabinet_loads_no_web_nor_database_library() -> None:
    code = "import sys, kabinet; print([m for m in ('litestar', 'sqlalchemy') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
