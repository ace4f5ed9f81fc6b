"""Counts with their noun in the person's language (issue 16, point 8): Babel's plural
forms through the host's ngettext, three in Russian (1 запись, 2 записи, 5 записей,
21 запись), two in English; every catalog that has plural messages carries all the
forms its language needs and compiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from kabinet import i18n
from kabinet_dictionaries.errors import Conflict

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = sorted(
    p
    for base in (ROOT / "host", ROOT / "plugins")
    for p in base.rglob("locale/*/LC_MESSAGES/messages.po")
    if ".venv" not in p.parts
)


@pytest.fixture(scope="module", autouse=True)
def every_catalog() -> None:
    """The catalogs of the host and of every app, as a started portal merges them."""
    for po in CATALOGS:
        i18n.add_catalogs(po.parents[2])


def test_every_catalog_compiles_and_carries_every_plural_form() -> None:
    assert any("identity" in p.parts for p in CATALOGS)
    assert any("kabinet_dictionaries" in p.parts for p in CATALOGS)
    plurals = 0
    for po in CATALOGS:
        with po.open("rb") as fp:
            catalog = read_po(fp)
        assert i18n.compile_po(po), po  # compiles
        lang = po.parents[1].name
        assert catalog.num_plurals == (3 if lang == "ru" else 2), po
        for message in catalog:
            if message.id and isinstance(message.id, tuple):
                plurals += 1
                forms = message.string
                assert isinstance(forms, tuple), message.id
                assert len(forms) == catalog.num_plurals, message.id
                assert all(forms), f"{po}: an empty form of {message.id[0]!r}"
    assert plurals >= 8


@pytest.mark.parametrize(
    ("singular", "plural", "ru", "en"),
    [
        (
            "%(num)d entry",
            "%(num)d entries",
            ["1 запись", "2 записи", "5 записей", "21 запись", "12 записей"],
            ["1 entry", "2 entries", "5 entries", "21 entries", "12 entries"],
        ),
        (
            "%(num)d field",
            "%(num)d fields",
            ["1 поле", "2 поля", "5 полей", "21 поле", "12 полей"],
            ["1 field", "2 fields", "5 fields", "21 fields", "12 fields"],
        ),
        (
            "%(num)d account",
            "%(num)d accounts",
            ["1 учётная запись", "2 учётные записи", "5 учётных записей", "21 учётная запись",
             "12 учётных записей"],
            ["1 account", "2 accounts", "5 accounts", "21 accounts", "12 accounts"],
        ),
        (
            "%(num)d event",
            "%(num)d events",
            ["1 событие", "2 события", "5 событий", "21 событие", "12 событий"],
            ["1 event", "2 events", "5 events", "21 events", "12 events"],
        ),
    ],
    ids=["entries", "fields", "accounts", "events"],
)  # fmt: skip
def test_a_count_takes_the_form_of_its_number(
    singular: str, plural: str, ru: list[str], en: list[str]
) -> None:
    for lang, said in (("ru", ru), ("en", en)):
        got = [i18n.ngettext_(lang, singular, plural, n) % {"num": n} for n in (1, 2, 5, 21, 12)]
        assert got == said


@pytest.mark.parametrize(
    ("n", "ru", "en"),
    [
        (1, "На запись ссылается 1 запись.", "1 entry refers to this entry."),
        (2, "На запись ссылаются 2 записи.", "2 entries refer to this entry."),
        (5, "На запись ссылаются 5 записей.", "5 entries refer to this entry."),
        (21, "На запись ссылается 21 запись.", "21 entries refer to this entry."),
    ],
)
def test_a_refusal_counting_entries_says_them_in_the_form_of_the_number(
    n: int, ru: str, en: str
) -> None:
    refused = Conflict("entry_referenced", None, count=n)
    assert refused.message("ru") == ru  # 21 takes the singular verb too
    assert refused.message("en") == en
    missing = Conflict("required_missing", "required", count=n, name="Маршрут")
    assert missing.message("ru").startswith(
        {1: "У 1 записи", 2: "У 2 записей", 5: "У 5 записей", 21: "У 21 записи"}[n]
    )
    used = Conflict("choice_in_use", "choices", count=n, choice="tent")
    assert used.message("ru").endswith(
        {1: "в 1 записи.", 2: "в 2 записях.", 5: "в 5 записях.", 21: "в 21 записи."}[n]
    )
    assert used.message("en").startswith(f"{n} entry uses" if n == 1 else f"{n} entries use")


def test_a_catalog_without_a_plural_rule_does_not_change_the_languages(tmp_path: Path) -> None:
    # A plugin's catalog added last without a Plural-Forms header (a throwaway test
    # plugin's, a third party's) used to give its English rule to Russian.
    folder = tmp_path / "locale" / "ru" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Parcel"\nmsgstr "Посылка"\n',
        encoding="utf-8",
    )
    i18n.add_catalogs(tmp_path / "locale")
    try:
        assert i18n.gettext_("ru", "Parcel") == "Посылка"
        forms = [i18n.translations("ru").plural(n) for n in (1, 2, 5, 21)]
        assert forms == [0, 1, 2, 0]
    finally:
        i18n._CATALOG_DIRS.remove(tmp_path / "locale")
        i18n.translations.cache_clear()
