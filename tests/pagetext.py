"""What a person reads on a page, and the raw codes and keys that must not reach them
(issue 16, point 8): shared by the page scan over HTTP (test_portal_texts.py) and the
journeys in a real browser (journeys/)."""

from __future__ import annotations

import html as htmllib
import re


def visible(page: str) -> str:
    """The text a person reads: no tags, scripts or styles, entities decoded."""
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    return htmllib.unescape(re.sub(r"(?s)<[^>]+>", " ", page))


APPS = r"(?:host|identity|roles|shell|companies|dictionaries|notifications|integration|shipments)"
RAW = [
    (re.compile(rf"\b{APPS}\.[a-z_]+(?:\.[a-z_]+)?\b"), "a permission or event code"),
    (re.compile(r"\b[a-z]+_[a-z_]+\b"), "an untranslated key"),
    (re.compile(r"\b(?:queued|in_review|withdrawn|overdue)\b"), "a raw status"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"), "an ISO time"),
]
# Raw statuses that are English words: on an English page they are the text itself
# ("Invoice overdue"), so only other languages' pages are checked for them.
ENGLISH_WORDS = re.compile(r"a raw status: (?:queued|withdrawn|overdue)")


def raw_codes(page: str) -> list[str]:
    """Raw codes and keys in what a person reads: the technical identifiers shown on
    purpose (``<code>``, form values, addresses) are left out, and on an English page
    (``<html lang="en">``) the statuses that are English words."""
    english = re.search(r"<html[^>]*\blang=\"en\"", page) is not None
    page = re.sub(r"(?is)<(code|pre|textarea|select)\b.*?</\1>", " ", page)
    text = " ".join(visible(page).split())
    text = re.sub(r"\S+@\S+", " ", text)  # e-mail addresses
    found = []
    for pattern, what in RAW:
        found += [f"{what}: {m.group(0)}" for m in pattern.finditer(text)]
    return [f for f in found if not (english and ENGLISH_WORDS.fullmatch(f))]
