"""Every text an app's templates ask for (``{{ t.key }}``) exists in Russian and in English,
and each app's two languages have the same keys, none empty: a missing key would show a
raw key, or nothing, on the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kabinet_companies import texts as companies
from kabinet_dictionaries import texts as dictionaries
from kabinet_integration import texts as integration
from kabinet_notifications import texts as notifications
from kabinet_shipments import texts as shipments

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
USED = re.compile(r"\bt\.([a-z_][a-z0-9_]*)\b(?!\s*\()")  # t.key, not t.of(…)


def _pairs(labels: dict[str, tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    return {k: v[0] for k, v in labels.items()}, {k: v[1] for k, v in labels.items()}


APPS = {
    "companies": (companies.texts("ru"), companies.texts("en")),
    "dictionaries": (dictionaries.text_for("ru"), dictionaries.text_for("en")),
    "integration": _pairs(integration.LABELS),
    "notifications": (notifications.TEXT["ru"], notifications.TEXT["en"]),
    "shipments": (shipments.texts("ru"), shipments.texts("en")),
}


@pytest.mark.parametrize("app", APPS)
def test_every_text_a_template_uses_is_there_in_both_languages(app: str) -> None:
    ru, en = APPS[app]
    templates = ROOT / "plugins" / app / f"kabinet_{app}" / "templates"
    used: dict[str, set[str]] = {}
    for page in sorted(templates.rglob("*.html")):
        for key in USED.findall(page.read_text(encoding="utf-8")):
            used.setdefault(key, set()).add(page.name)
    assert used, f"no t.key found in {templates}"
    missing = {key: sorted(pages) for key, pages in used.items() if key not in ru or key not in en}
    assert missing == {}
    assert set(ru) == set(en)
    assert [k for k in ru if not ru[k].strip() or not en[k].strip()] == []
