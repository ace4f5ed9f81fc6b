"""Templates in a Jinja2 sandbox: only the declared variables, bounded time and output.

Staff write these templates, so a template is treated as untrusted code. Three lines hold:

1. **What may be written** (checked when a template is saved, and again before any stored
   template is compiled): plain variables, text, ``{% if %}``, ``{% for %}``,
   ``{% set %}``, ``{% with %}``, arithmetic, comparisons, ``~`` and a short list of
   filters (:data:`FILTERS`). No attribute or item access, no calls, no ``include``,
   ``import``, ``extends``, macros or blocks, no filter outside the list; the source is at
   most :data:`MAX_SOURCE` characters.
2. **What a render may cost**: every operator is intercepted (``**`` and ``*`` may not make
   a number of more than :data:`MAX_BITS` bits, ``*``/``+``/``~``/filters no text or list
   longer than :data:`MAX_OUTPUT`, ``%`` does not format text), every loop counts its steps
   (:data:`MAX_STEPS` per part), each step looks at the clock (:data:`RENDER_SECONDS`), and
   the output is streamed and cut at :data:`MAX_OUTPUT` characters. Nothing is computed at
   compile time that these checks would not see.
3. **Where it runs**: :func:`render_async` runs the render in a worker thread and waits at
   most :data:`THREAD_SECONDS`; the event loop is never held by a template.

A template is saved only if it renders against the sample values (``services.validate``);
at send time the same renderer turns any failure into a :class:`TemplateError`, which the
delivery records as its reason. The sandbox itself (the budget, the bounded filters, the
recipient's formats) is :mod:`.sandbox`. SMS length is counted the way operators bill it (GSM-7 or
UCS-2 parts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import re
import time
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from jinja2 import Template, TemplateSyntaxError, nodes

from kabinet_notifications.sandbox import (
    BUDGET,
    FILTERS,
    LOCALE_FILTERS,
    MAX_OUTPUT,
    MAX_SOURCE,
    RENDER_SECONDS,
    Bound,
    Budget,
    Limit,
    env_for,
    part_budget,
    tick,
)
from kabinet_notifications.sandbox import RECIPIENT_LANGUAGE as RECIPIENT_LANGUAGE
from kabinet_notifications.sandbox import RECIPIENT_TIMEZONE as RECIPIENT_TIMEZONE

CHANNELS = ("email", "sms", "telegram", "push")
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("subject", "html", "body"),
    "sms": ("body",),
    "telegram": ("body",),
    "push": ("subject", "body"),
}
"""The parts of a template on each channel (``subject`` is the push title)."""
PORTAL_URL = "portal_url"
"""The variable holding the portal's address (``host.base_url``): a template writes a link
as ``{{ portal_url }}/shipments/orders/{{ order_id }}``, so it works in any mail client."""
ALWAYS = {"recipient_name": "Иван Петров", PORTAL_URL: "https://portal.example.com"}
"""Variables every template may use, with their sample values (``portal_url`` is always
the real address when a message is rendered or previewed)."""
_RELATIVE = re.compile(r"""(\b(?:href|src)\s*=\s*["'])/(?![/\\])""", re.IGNORECASE)
MASK = "•••"

ALLOWED = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.If,
    nodes.For,
    nodes.Assign,
    nodes.With,
    nodes.Concat,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.BinExpr,
)
"""The syntax a template may use; anything else (include, import, extends, macro, call,
block, filter and set blocks, autoescape) is refused with its name."""
TAGS: dict[type[nodes.Node], str] = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Extends: "extends",
    nodes.Block: "block",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.FilterBlock: "filter",
    nodes.AssignBlock: "set … endset",
    nodes.ScopedEvalContextModifier: "autoescape",
    nodes.EvalContextModifier: "autoescape",
}

REASONS = (
    "syntax",
    "source",
    "tag",
    "filter",
    "attribute",
    "call",
    "variable",
    "empty",
    "number",
    "too_big",
    "formatting",
    "too_slow",
    "render",
)
"""Why a template was refused; the editor shows each in the reader's language."""


class TemplateError(Exception):
    """A template that cannot be saved or rendered; names the part, the line and the reason
    (one of :data:`REASONS`)."""

    def __init__(
        self, part: str, message: str, line: int | None = None, *, reason: str = "render"
    ) -> None:
        self.part = part
        self.message = message
        self.line = line
        self.reason = reason
        where = f" (line {line})" if line else ""
        super().__init__(f"{part}{where}: {message}")


# -- checking and compiling -----------------------------------------------------------------


def _parse(channel: str, part: str, source: str) -> nodes.Template:
    """The template's tree, refused unless it uses only what :data:`ALLOWED` lists."""
    if len(source) > MAX_SOURCE:
        raise TemplateError(
            part, f"longer than {MAX_SOURCE} characters ({len(source)})", reason="source"
        )
    try:
        tree = env_for(channel, part).parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            part, exc.message or "syntax error", exc.lineno, reason="syntax"
        ) from None
    except (RecursionError, ValueError, MemoryError) as exc:
        raise TemplateError(
            part, f"cannot be read: {type(exc).__name__}", reason="syntax"
        ) from None
    for node in tree.find_all(nodes.Node):
        line = getattr(node, "lineno", None)
        if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Slice)):
            raise TemplateError(
                part, "only plain variables may be used here", line, reason="attribute"
            )
        if isinstance(node, nodes.Call):
            raise TemplateError(part, "calling functions is not allowed", line, reason="call")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS | set(LOCALE_FILTERS):
            allowed = ", ".join(sorted(FILTERS | set(LOCALE_FILTERS)))
            raise TemplateError(
                part,
                f"the filter {node.name!r} is not allowed (allowed: {allowed})",
                line,
                reason="filter",
            )
        if not isinstance(node, ALLOWED):
            tag = TAGS.get(type(node), type(node).__name__.lower())
            raise TemplateError(part, f"{{% {tag} %}} is not allowed here", line, reason="tag")
    return tree


def check(channel: str, part: str, source: str, variables: Iterable[str]) -> None:
    """Raise :class:`TemplateError` unless ``source`` is a template that may be saved."""
    allowed = set(variables) | set(ALWAYS)
    tree = _parse(channel, part, source)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in allowed and node.name not in assigned:
            known = ", ".join(sorted(allowed))
            raise TemplateError(
                part,
                f"unknown variable {node.name!r} (known: {known})",
                node.lineno,
                reason="variable",
            )
    with part_budget(part):
        compiled(channel, part, source)


@functools.lru_cache(maxsize=512)
def compiled(channel: str, part: str, source: str) -> Template:
    """Compiling is most of the cost of a render: each source is checked and compiled once.
    A stored template meets the same checks as one being saved (but for the variables)."""
    tree = Bound().visit(_parse(channel, part, source))
    try:
        return env_for(channel, part).from_string(tree)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            part, exc.message or "syntax error", exc.lineno, reason="syntax"
        ) from None
    except Limit as exc:
        raise TemplateError(part, exc.message, reason=exc.reason) from None
    except (RecursionError, SyntaxError, ValueError, MemoryError) as exc:
        raise TemplateError(
            part, f"cannot be compiled: {type(exc).__name__}", reason="syntax"
        ) from None


def _line(tb: types.TracebackType | None) -> int | None:
    """The template line a render failed on (Jinja rewrites the frames to the template's)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(channel: str, part: str, source: str, values: Mapping[str, Any]) -> str:
    """Render one part within the limits; any failure is a :class:`TemplateError`."""
    if not source:
        return ""
    with part_budget(part):
        template = compiled(channel, part, source)
        out: list[str] = []
        size = 0
        stream = template.generate(dict(values))
        try:
            for chunk in stream:
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise Limit("too_big", f"the text is longer than {MAX_OUTPUT} characters")
                out.append(chunk)
                tick()
        except TemplateError:
            raise
        except Limit as exc:
            raise TemplateError(
                part, exc.message, _line(exc.__traceback__), reason=exc.reason
            ) from None
        except TemplateSyntaxError as exc:
            raise TemplateError(
                part, exc.message or "syntax error", exc.lineno, reason="syntax"
            ) from None
        except Exception as exc:  # a template's failure, whatever it is, is its reason
            message = str(exc) or type(exc).__name__
            raise TemplateError(part, message[:500], _line(exc.__traceback__)) from None
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return "".join(out).strip()


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    html: str


def render_all(channel: str, parts: Mapping[str, str], values: Mapping[str, Any]) -> Rendered:
    """The channel's parts rendered (the parts it does not have are empty)."""
    have = FIELDS.get(channel, ("subject", "body", "html"))
    out = {
        p: render(channel, p, parts.get(p, ""), values) if p in have else ""
        for p in ("subject", "body", "html")
    }
    base = values.get(PORTAL_URL)
    if isinstance(base, str) and base:
        # A link a template wrote as a path (``href="/shipments/…"``: a template saved
        # before ``portal_url``) is made absolute, in HTML parts (e-mail, Telegram).
        html_parts = ("html", "body") if channel == "telegram" else ("html",)
        for p in html_parts:
            out[p] = _RELATIVE.sub(lambda m: m.group(1) + base.rstrip("/") + "/", out[p])
    return Rendered(subject=out["subject"], body=out["body"], html=out["html"])


# -- off the event loop ---------------------------------------------------------------------

THREAD_SECONDS = 3.0
"""How long the event loop waits for the worker (queueing included) before giving up."""
_WORKERS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kabinet-render")
T = TypeVar("T")


def _each(budget: Budget, func: Callable[..., T], calls: list[tuple[Any, ...]]) -> list[Any]:
    """``func(*args)`` for each of ``calls``, each with :data:`RENDER_SECONDS` of its own;
    a :class:`TemplateError` is the result of its call, not the end of the others."""
    token = BUDGET.set(budget)
    out: list[Any] = []
    try:
        for args in calls:
            budget.deadline = time.monotonic() + RENDER_SECONDS
            try:
                out.append(func(*args))
            except TemplateError as exc:
                out.append(exc)
    finally:
        BUDGET.reset(token)
    return out


async def in_worker_each(
    func: Callable[..., T], calls: list[tuple[Any, ...]]
) -> list[T | TemplateError]:
    """``func(*args)`` for each of ``calls`` in one trip to a render worker thread (a
    fan-out renders thousands of messages: one trip each would cost more than the
    renders), waited for at most :data:`THREAD_SECONDS` plus :data:`RENDER_SECONDS` a call.

    A thread cannot be killed: on time-out its budget is stopped, so the render stops at
    its next step, and every call gets a :class:`TemplateError` at once."""
    if not calls:
        return []
    budget = Budget(deadline=float("inf"))
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(_WORKERS, _each, budget, func, calls)
    try:
        return await asyncio.wait_for(future, THREAD_SECONDS + RENDER_SECONDS * (len(calls) - 1))
    except TimeoutError:
        budget.stopped = True
        late = f"rendering took longer than {THREAD_SECONDS:g} s"
        return [TemplateError(budget.part, late, reason="too_slow") for _ in calls]


async def in_worker(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a render worker thread, waited for at most :data:`THREAD_SECONDS`;
    its :class:`TemplateError` is raised here."""
    (result,) = await in_worker_each(func, [args])
    if isinstance(result, TemplateError):
        raise result
    return result


async def render_async(
    channel: str, parts: Mapping[str, str], values: Mapping[str, Any]
) -> Rendered:
    """:func:`render_all` off the event loop."""
    return await in_worker(lambda: render_all(channel, parts, values))


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
