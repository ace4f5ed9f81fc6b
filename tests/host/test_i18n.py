"""Languages: negotiation, catalogs, formatting for the language and the time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from kabinet import i18n

pytestmark = pytest.mark.smoke

LANGS = ["ru", "en"]


@pytest.mark.parametrize(
    ("cookie", "accept", "expected"),
    [
        (None, None, "ru"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "de-DE, en;q=0.5, ru;q=0.8", "ru"),
        (None, "de, fr", "ru"),
        ("en", "ru", "en"),
        ("xx", "en", "en"),
        (None, "en;q=0, ru;q=0.1", "ru"),
    ],
)
def test_negotiate(cookie: str | None, accept: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie, accept, LANGS, "ru") == expected


def test_catalogs_translate_to_russian_and_pass_english_through() -> None:
    assert i18n.gettext_("ru", "Sign in") == "Войти"
    assert i18n.gettext_("en", "Sign in") == "Sign in"
    assert i18n.gettext_("ru", "not in any catalog") == "not in any catalog"


def test_every_message_has_a_russian_translation() -> None:
    from babel.messages.pofile import read_po

    with (i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalog = read_po(fp)
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []


def test_every_message_of_the_host_templates_is_translated() -> None:
    """A Russian page shows no English text: each ``_("…")`` of the shell, host, identity
    and roles templates is in the Russian catalog (the host's or identity's, merged)."""
    import re
    from pathlib import Path

    from babel.messages.pofile import read_po

    package = Path(i18n.__file__).parent
    known: set[str] = set()
    for po in (
        i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po",
        package / "identity" / "locale" / "ru" / "LC_MESSAGES" / "messages.po",
    ):
        with po.open("rb") as fp:
            known |= {m.id for m in read_po(fp) if isinstance(m.id, str) and m.id and m.string}
    call = re.compile(r"""_\(\s*(?:"([^"]*)"|'([^']*)')""")
    missing = [
        f"{template.relative_to(package)}: {found.group(1) or found.group(2)}"
        for folder in ("templates", "identity/templates", "roles/templates")
        for template in sorted((package / folder).rglob("*.html"))
        for found in call.finditer(template.read_text(encoding="utf-8"))
        if (found.group(1) or found.group(2)) not in known
    ]
    assert missing == []


def test_po_compiles_in_memory_to_a_catalog() -> None:
    data = i18n.compile_po(i18n.LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po")
    assert data[:4] in (b"\xde\x12\x04\x95", b"\x95\x04\x12\xde")  # the .mo magic number


def test_times_are_shown_in_the_persons_time_zone() -> None:
    stored = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    assert i18n.format_datetime(stored, "en", "Europe/Moscow", "short") == "3/2/26, 12:30\u202fAM"
    assert i18n.format_datetime(stored, "ru", "Europe/Moscow", "short") == "02.03.2026, 00:30"
    assert i18n.format_date(stored, "ru", "Asia/Vladivostok") == "2 мар. 2026\u202fг."
    naive = datetime(2026, 3, 1, 21, 30)  # naive means UTC
    assert i18n.to_local(naive, "Europe/Moscow").hour == 0
    assert i18n.format_date(date(2026, 1, 5), "en", "UTC") == "Jan 5, 2026"
    assert i18n.format_datetime(None, "ru", "UTC") == ""
    # a time kept as ISO text (a failed job's row, JSON-shaped) is shown the same way
    iso = "2026-03-01T21:30:00+00:00"
    assert i18n.format_datetime(iso, "ru", "Europe/Moscow", "short") == "02.03.2026, 00:30"
    assert i18n.format_datetime("", "ru", "UTC") == ""


def test_numbers_and_money_for_the_language() -> None:
    assert i18n.format_number(1234567.5, "ru") == "1\xa0234\xa0567,5"
    assert i18n.format_number(1234567.5, "en") == "1,234,567.5"
    assert i18n.format_money(Decimal("1500.50"), "RUB", "ru") == "1\xa0500,50\xa0₽"
    assert i18n.format_money(Decimal("1500.50"), "RUB", "en") == "RUB1,500.50"


def test_localized_labels_fall_back() -> None:
    assert i18n.localized({"ru": "Заказы", "en": "Orders"}, "en") == "Orders"
    assert i18n.localized({"en": "Orders"}, "ru") == "Orders"
    assert i18n.localized({"de": "Aufträge"}, "ru") == "Aufträge"


def test_money_and_dates_are_formatted_as_babel_does() -> None:
    """The fast paths of format_money and format_date give Babel's text, to the character."""
    import datetime as dt
    import random
    from decimal import Decimal

    from babel import dates, numbers

    rng = random.Random(7)
    amounts = [
        Decimal(rng.randint(-(10**12), 10**12)) / 10 ** rng.randint(0, 4) for _ in range(3000)
    ]
    amounts += [Decimal("0"), Decimal("-0.001"), Decimal("0.005"), Decimal("0.015")]
    for lang in ("ru", "en"):
        loc = i18n.locale(lang)
        for currency in ("RUB", "USD", "EUR", "CNY", "JPY", "KZT"):
            assert i18n._money_format(lang, currency) is not None  # the fast path is taken
            for amount in amounts:
                expected = numbers.format_currency(amount, currency, locale=loc)
                assert i18n.format_money(amount, currency, lang) == expected
        assert i18n.format_money(1500.5, "RUB", lang) == numbers.format_currency(
            1500.5, "RUB", locale=loc
        )
        start = dt.date(1990, 1, 1)
        for days in range(0, 60 * 366, 7):
            day = start + dt.timedelta(days=days)
            for fmt in ("short", "medium", "long"):
                assert i18n.format_date(day, lang, "UTC", fmt) == dates.format_date(
                    day, fmt, locale=loc
                )
    assert i18n._date_format("ru", "short") is not None
    assert i18n._date_format("ru", "medium") is None  # month names: Babel's own way
    assert i18n.format_money(Decimal("1234.5"), "RUB", "ru") == "1\xa0234,50\xa0₽"
    assert i18n.format_money(Decimal("-1234.5"), "USD", "en") == "-$1,234.50"
    assert i18n.format_date(dt.date(2026, 3, 2), "en", "UTC", "short") == "3/2/26"
