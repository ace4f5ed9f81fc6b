"""Every text of the booking app exists in Russian and English: the templates' ``t.key``
in texts.py, and each refusal's message id in the Russian catalog (or the host's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kabinet.i18n import gettext_
from kabinet.testing import Portal
from kabinet_booking import texts

pytestmark = pytest.mark.smoke

PACKAGE = Path(texts.__file__).parent
USED = re.compile(r"\bt\.([a-z_][a-z0-9_]*)\b(?!\s*\()")
REFUSALS = re.compile(
    r"(?:FieldError|NotFound|Refused|KeyBusy|KeyRefused)\(\s*\"([^\"]+)\"", re.MULTILINE
)


def test_every_text_a_template_uses_is_there_in_both_languages() -> None:
    ru, en = texts.text_for("ru"), texts.text_for("en")
    used = {
        key
        for page in (PACKAGE / "templates").rglob("*.html")
        for key in USED.findall(page.read_text(encoding="utf-8"))
    }
    assert used
    assert sorted(used - set(ru)) == []
    assert set(ru) == set(en)
    assert [k for k in ru if not ru[k].strip() or not en[k].strip()] == []


async def test_every_refusal_is_translated_into_russian(portal: Portal) -> None:
    ids = {
        found
        for path in PACKAGE.rglob("*.py")
        for found in REFUSALS.findall(path.read_text(encoding="utf-8"))
    }
    assert "The loading date has passed." in ids
    untranslated = sorted(i for i in ids if gettext_("ru", i) == i)
    assert untranslated == []
    assert gettext_("ru", "Delivery cannot be before loading.") == (
        "Доставка не может быть раньше погрузки."
    )
