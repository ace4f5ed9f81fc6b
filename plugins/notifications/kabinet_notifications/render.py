"""Templates in a Jinja2 sandbox: only the declared variables, no attribute access.

A template is checked when saved: a syntax error, an undeclared variable, an attribute
or item access each fail with the line they are on, and the template is not saved. SMS
length is counted the way operators bill it (GSM-7 or UCS-2 parts).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

CHANNELS = ("email", "sms", "telegram", "push")
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "body"),
    "sms": ("body",),
    "telegram": ("body",),
    "push": ("subject", "body"),
}
"""The parts of a template on each channel (``subject`` is the push title)."""
ALWAYS = {"recipient_name": "Иван Петров"}
"""Variables every template may use, with their sample values."""
MASK = "•••"


class TemplateError(Exception):
    """A template that cannot be saved or rendered; names the part and the line."""

    def __init__(self, part: str, message: str, line: int | None = None) -> None:
        self.part = part
        self.message = message
        self.line = line
        where = f" (line {line})" if line else ""
        super().__init__(f"{part}{where}: {message}")


class _Strict(SandboxedEnvironment):
    """The sandbox, stricter: no attribute of anything, no calling methods."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False


def _env(autoescape: bool) -> _Strict:
    env = _Strict(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=False)
    env.globals.clear()
    return env


TEXT_ENV = _env(False)
HTML_ENV = _env(True)


def env_for(channel: str, part: str) -> _Strict:
    """HTML parts (e-mail HTML, Telegram's HTML parse mode) escape the values."""
    return HTML_ENV if part == "html" or (channel == "telegram" and part == "body") else TEXT_ENV


def check(channel: str, part: str, source: str, variables: Iterable[str]) -> None:
    """Raise :class:`TemplateError` unless ``source`` is a template that may be saved."""
    allowed = set(variables) | set(ALWAYS)
    env = env_for(channel, part)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(part, exc.message or "syntax error", exc.lineno) from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        raise TemplateError(part, "only plain variables may be used here", node.lineno)
    for node in tree.find_all(nodes.Call):
        raise TemplateError(part, "calling functions is not allowed", node.lineno)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in allowed and node.name not in assigned:
            known = ", ".join(sorted(allowed))
            raise TemplateError(
                part, f"unknown variable {node.name!r} (known: {known})", node.lineno
            )
    try:
        env.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(part, exc.message or "syntax error", exc.lineno) from None


@functools.lru_cache(maxsize=512)
def compiled(channel: str, part: str, source: str) -> Template:
    """Compiling is most of the cost of a render: each source is compiled once."""
    return env_for(channel, part).from_string(source)


def render(channel: str, part: str, source: str, values: Mapping[str, Any]) -> str:
    """Render one part; an error at run time is a :class:`TemplateError` too."""
    if not source:
        return ""
    try:
        return compiled(channel, part, source).render(dict(values)).strip()
    except TemplateSyntaxError as exc:
        raise TemplateError(part, exc.message or "syntax error", exc.lineno) from None
    except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
        raise TemplateError(part, str(exc)) from None


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html: str


def render_all(channel: str, parts: Mapping[str, str], values: Mapping[str, Any]) -> Rendered:
    out = {p: render(channel, p, parts.get(p, ""), values) for p in ("subject", "body", "html")}
    return Rendered(subject=out["subject"], body=out["body"], html=out["html"])


GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = set("^{}\\[~]|€\f")


@dataclasses.dataclass(frozen=True)
class SmsLength:
    chars: int
    parts: int
    encoding: str
    """``GSM-7`` or ``UCS-2`` (any Cyrillic letter makes the whole text UCS-2)."""


def sms_length(text: str) -> SmsLength:
    """Characters and parts as operators count them (the JS counter does the same)."""
    if all(c in GSM7 or c in GSM7_EXT for c in text):
        units = sum(2 if c in GSM7_EXT else 1 for c in text)
        single, multi, enc = 160, 153, "GSM-7"
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
        single, multi, enc = 70, 67, "UCS-2"
    parts = 0 if units == 0 else 1 if units <= single else -(-units // multi)
    return SmsLength(chars=units, parts=parts, encoding=enc)
