"""Languages: picking the person's language, message catalogs, and formatting for it.

Russian is the default; a person switches with the shell's language switch (remembered in
the ``kabinet_lang`` cookie), else ``Accept-Language`` decides among ``[host] languages``.

Catalogs are Babel ``.po`` files in ``kabinet/locale/<lang>/LC_MESSAGES/messages.po``
with English message ids. They are compiled when first used, in memory, with Babel (a
``.mo`` file next to the ``.po`` is used instead when a build produced one), so neither a
build step nor ``msgfmt`` is needed to run from a checkout. Times are stored in UTC and
shown in the person's time zone (``[host] timezone`` unless the person has their own).
"""

from __future__ import annotations

import functools
import gettext
import io
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANG_COOKIE = "kabinet_lang"
UTC = ZoneInfo("UTC")


_CATALOG_DIRS: list[Path] = [LOCALE_DIR]


def add_catalogs(folder: Path) -> None:
    """Merge the catalogs in ``folder`` (``<lang>/LC_MESSAGES/messages.po``, a plugin's
    ``locale_dir``) into every language's catalog, in this process, after those added
    before (a message both translate keeps the earlier translation)."""
    if folder not in _CATALOG_DIRS:
        _CATALOG_DIRS.append(folder)
        translations.cache_clear()


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang``: the host's, then each plugin's (English ids pass through
    untranslated)."""
    merged: Translations | None = None
    first: Translations | None = None
    for folder in _CATALOG_DIRS:
        found = _catalog(folder / lang / "LC_MESSAGES")
        if found is None:
            continue
        if merged is None:
            merged = first = found
        else:
            # merge() lets the later catalog win: keep what the earlier ones translate
            found.merge(merged)
            merged = found
    if merged is None or first is None:
        return gettext.NullTranslations()
    # The plural rule is the language's, from the first catalog (the host's): a plugin's
    # catalog without a Plural-Forms header would otherwise give Russian English plurals.
    merged.plural = first.plural
    return merged


def _catalog(folder: Path) -> Translations | None:
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fp:
            return Translations(fp, domain=DOMAIN)
    if po.exists():
        return Translations(io.BytesIO(compile_po(po)), domain=DOMAIN)
    return None


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of a ``.po`` catalog."""
    with po.open("rb") as fp:
        catalog = read_po(fp)
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def gettext_(lang: str, message: str) -> str:
    return translations(lang).gettext(message)


def ngettext_(lang: str, singular: str, plural: str, n: int) -> str:
    return translations(lang).ngettext(singular, plural, n)


def negotiate(
    cookie: str | None, accept_language: str | None, languages: Sequence[str], default: str
) -> str:
    """The language for a request: the remembered choice, else the browser's, else default."""
    if cookie and cookie in languages:
        return cookie
    if accept_language:
        for tag, _ in _parse_accept(accept_language):
            base = tag.split("-")[0].lower()
            if base in languages:
                return base
            if tag == "*":
                break
    return default


def _parse_accept(header: str) -> list[tuple[str, float]]:
    """``Accept-Language`` entries, best first (stable for equal weights)."""
    items: list[tuple[str, float]] = []
    for part in header.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            items.append((tag.strip(), q))
    return sorted(items, key=lambda item: -item[1])


def localized(labels: Mapping[str, str], lang: str, fallback: str = "en") -> str:
    """A label given per language (a plugin's title, a navigation entry)."""
    return labels.get(lang) or labels.get(fallback) or next(iter(labels.values()), "")


@functools.cache
def locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang)
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


@functools.cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def to_local(value: datetime, tz: str) -> datetime:
    """A stored time (UTC; naive means UTC) in time zone ``tz``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone(tz))


def format_datetime(value: datetime | str | None, lang: str, tz: str, fmt: str = "medium") -> str:
    """A stored time (a datetime, or the ISO text of one, as JSON-shaped rows carry it)
    in the person's zone and format."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    return dates.format_datetime(to_local(value, tz), format=fmt, locale=locale(lang))


def format_date(value: date | datetime | None, lang: str, tz: str, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value, tz).date()
    fast = _date_format(lang, fmt)
    if fast is not None:
        return fast % _date_fields(value)
    return dates.format_date(value, format=fmt, locale=locale(lang))


def format_number(value: float | Decimal | int | None, lang: str) -> str:
    if value is None:
        return ""
    return numbers.format_decimal(value, locale=locale(lang))


def format_money(value: float | Decimal | int | None, currency: str, lang: str) -> str:
    if value is None:
        return ""
    fast = _money_format(lang, currency)
    if fast is not None:
        return fast(value)
    return numbers.format_currency(value, currency, locale=locale(lang))


# -- fast paths ----------------------------------------------------------------------------
# A registry page formats hundreds of amounts and dates; Babel parses and walks its pattern
# for each (about a quarter of the page's time). For the common patterns the same text is
# made with str formatting; each fast path is checked against Babel on sample values when
# it is first built, and Babel is used whenever they differ or the pattern is unusual.

_MONEY_SAMPLES = ("0", "-0.004", "0.5", "7", "999.995", "1234.5", "-1234567.891", "1e9")
_DATE_SAMPLES = (date(2026, 1, 5), date(1999, 12, 31), date(2031, 10, 20), date(1, 2, 3))


def _money_fast(
    digits: int, group: str, decimal: str, pos: tuple[str, str], neg: tuple[str, str]
) -> Callable[[float | Decimal | int], str]:
    spec = f",.{digits}f"

    def fmt(value: float | Decimal | int) -> str:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        text = format(number, spec)
        prefix, suffix = neg if text.startswith("-") else pos
        body = text.lstrip("-").replace(",", "\0").replace(".", decimal).replace("\0", group)
        return f"{prefix}{body}{suffix}"

    return fmt


@functools.cache
def _money_format(lang: str, currency: str) -> Callable[[float | Decimal | int], str] | None:
    """``format_currency`` of the locale's standard pattern, or None where it is unusual."""
    loc = locale(lang)
    try:
        pattern = loc.currency_formats["standard"]
        symbols = loc.number_symbols["latn"]
        symbol = numbers.get_currency_symbol(currency, loc)
        digits = numbers.get_currency_precision(currency)
    except (KeyError, TypeError, AttributeError):
        return None
    if pattern.grouping != (3, 3) or pattern.scale != 0 or pattern.exp_prec:
        return None
    pos = (pattern.prefix[0].replace("¤", symbol), pattern.suffix[0].replace("¤", symbol))
    neg = (pattern.prefix[1].replace("¤", symbol), pattern.suffix[1].replace("¤", symbol))
    fast = _money_fast(digits, symbols["group"], symbols["decimal"], pos, neg)
    for sample in _MONEY_SAMPLES:
        value = Decimal(sample)
        if fast(value) != numbers.format_currency(value, currency, locale=loc):
            return None
    return fast


_DATE_FIELDS = {"d", "dd", "M", "MM", "y", "yy", "yyyy"}
_DATE_LENGTHS: dict[str, Literal["full", "long", "medium", "short"]] = {
    "full": "full",
    "long": "long",
    "medium": "medium",
    "short": "short",
}


def _date_fields(day: date) -> dict[str, str]:
    return {
        "d": str(day.day),
        "dd": f"{day.day:02d}",
        "M": str(day.month),
        "MM": f"{day.month:02d}",
        "y": str(day.year),
        "yy": f"{day.year % 100:02d}",
        "yyyy": f"{day.year:04d}",
    }


@functools.cache
def _date_format(lang: str, fmt: str) -> str | None:
    """The ``%``-format of a numeric date pattern (``dd.MM.y``), or None for the others."""
    loc = locale(lang)
    length = _DATE_LENGTHS.get(fmt)
    if length is None:  # a pattern of its own ("dd MMM"): Babel's way
        return None
    try:
        form = str(dates.get_date_format(length, loc).format)
    except (KeyError, ValueError):
        return None
    used = set(re.findall(r"%\((\w+)\)s", form))
    if not used or not used <= _DATE_FIELDS:
        return None
    for sample in _DATE_SAMPLES:
        if form % _date_fields(sample) != dates.format_date(sample, fmt, locale=loc):
            return None
    return form
