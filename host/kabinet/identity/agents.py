"""A session's browser as a person names it: "Chrome 156 · Linux", read from the
User-Agent header with a few patterns (no dependency: the profile needs the name and the
major version, not a device database). A header none of them reads is shown shortened at
a word boundary."""

from __future__ import annotations

import re

LIMIT = 60
"""How many characters of an unread header the profile shows."""

_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        # the first that matches names it: each of these also says "Chrome" or "Safari"
        ("Edge", r"\bEdg(?:e|A|iOS)?/(\d+)"),
        ("Opera", r"\b(?:OPR|Opera)/(\d+)"),
        ("Yandex Browser", r"\bYaBrowser/(\d+)"),
        ("Samsung Internet", r"\bSamsungBrowser/(\d+)"),
        ("Firefox", r"\b(?:Firefox|FxiOS)/(\d+)"),
        ("Chrome", r"\b(?:Chrome|CriOS|Chromium)/(\d+)"),
        ("Safari", r"\bVersion/(\d+)(?:\.\d+)*(?: Mobile/\S+)? Safari/"),
    )
)

_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Android", r"\bAndroid(?: (\d+))?"),
        ("iOS", r"\b(?:iPhone|iPod)\b"),
        ("iPadOS", r"\biPad\b"),
        ("Windows", r"\bWindows\b"),
        ("ChromeOS", r"\bCrOS\b"),
        ("macOS", r"\bMac OS X\b|\bMacintosh\b"),
        ("Linux", r"\bLinux\b"),
    )
)


def summary(agent: str) -> str:
    """``agent`` (a User-Agent header) as "Browser major · System", or shortened."""
    agent = " ".join(agent.split())
    if not agent:
        return ""
    browser = ""
    for name, pattern in _BROWSERS:
        found = pattern.search(agent)
        if found:
            browser = f"{name} {found.group(1)}"
            break
    if not browser:
        return shortened(agent)
    for name, pattern in _SYSTEMS:
        found = pattern.search(agent)
        if found:
            system = f"{name} {found.group(1)}" if found.groups() and found.group(1) else name
            return f"{browser} · {system}"
    return browser


def shortened(text: str, limit: int = LIMIT) -> str:
    """``text`` cut at the last space within ``limit`` characters, with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ;,(") + "…"
