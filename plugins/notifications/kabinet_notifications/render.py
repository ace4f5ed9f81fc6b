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
delivery records as its reason. SMS length is counted the way operators bill it (GSM-7 or
UCS-2 parts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import datetime as dt
import functools
import re
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    nodes,
    pass_context,
)
from jinja2.exceptions import TemplateNotFound
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from kabinet import i18n

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

MAX_SOURCE = 50_000
"""Characters of one part's source."""
MAX_OUTPUT = 100_000
"""Characters of one rendered part, and of any text or list made while rendering."""
MAX_BITS = 256
"""The largest number a template may compute (about 77 digits)."""
MAX_STEPS = 10_000
"""Loop steps of one part, all loops together."""
RENDER_SECONDS = 1.0
"""How long one render may run; each step checks, so the worker stops by itself."""
THREAD_SECONDS = 3.0
"""How long the event loop waits for the worker (queueing included) before giving up."""

FILTERS = frozenset(
    {
        "abs",
        "capitalize",
        "count",
        "d",
        "default",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "forceescape",
        "int",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "replace",
        "reverse",
        "round",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
    }
)
"""The filters a template may use: none reads attributes, calls code or pads text."""

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


class Limit(Exception):
    """Raised inside a render when a template reaches a limit; becomes a TemplateError."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# -- the budget of one render ---------------------------------------------------------------


@dataclasses.dataclass
class Budget:
    """The clock and the steps left to the render running in this thread."""

    deadline: float
    steps: int = MAX_STEPS
    part: str = "body"
    stopped: bool = False
    """Set when the caller gave up waiting: every following step fails at once."""

    def tick(self) -> None:
        if self.stopped or time.monotonic() > self.deadline:
            raise Limit("too_slow", f"rendering took longer than {RENDER_SECONDS:g} s")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "kabinet_notifications_budget", default=None
)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


@contextlib.contextmanager
def _budget(part: str) -> Iterator[Budget]:
    """The budget of rendering ``part``: the caller's clock if one runs, fresh steps."""
    outer = _BUDGET.get()
    budget = outer or Budget(deadline=time.monotonic() + RENDER_SECONDS)
    budget.steps, budget.part = MAX_STEPS, part
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple, dict, set, frozenset)) else None


def _bounded(value: Any) -> Any:
    """``value`` if within the limits, else :class:`Limit`."""
    size = _size(value)
    if size is not None and size > MAX_OUTPUT:
        raise Limit("too_big", f"a value longer than {MAX_OUTPUT} characters or items")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise Limit("number", f"a number larger than {MAX_BITS} bits")
    return value


def _int(value: Any) -> bool:
    return isinstance(value, int)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before computing it, what would take long or grow large."""
    if operator == "%" and isinstance(left, str):
        raise Limit("formatting", "formatting text with % is not allowed: join with ~")
    if (
        operator == "**"
        and _int(left)
        and _int(right)
        and right > 0
        and abs(left) > 1
        and left.bit_length() * right > MAX_BITS
    ):
        raise Limit("number", f"a number larger than {MAX_BITS} bits")
    if operator == "*":
        if _int(left) and _int(right) and left.bit_length() + right.bit_length() > MAX_BITS:
            raise Limit("number", f"a number larger than {MAX_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and _int(times) and size * max(times, 0) > MAX_OUTPUT:
                raise Limit("too_big", f"a value longer than {MAX_OUTPUT} characters or items")
    if operator == "+":
        first, second = _size(left), _size(right)
        if first is not None and second is not None and first + second > MAX_OUTPUT:
            raise Limit("too_big", f"a value longer than {MAX_OUTPUT} characters or items")


# -- the filters, each bounded --------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _before_replace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    named = ("s", "old", "new", "count")
    given = dict(zip(named, args, strict=False)) | kwargs
    text, old, new = (str(given.get(k, "")) for k in named[:3])
    count = given.get("count")
    found = text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_OUTPUT:
        raise Limit("too_big", f"a value longer than {MAX_OUTPUT} characters or items")
    return args


def _before_join(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    items = list(args[0]) if args else []
    between = str(args[1] if len(args) > 1 else kwargs.get("d", ""))
    size = sum(len(str(i)) for i in items) + len(between) * max(len(items) - 1, 0)
    if size > MAX_OUTPUT:
        raise Limit("too_big", f"a value longer than {MAX_OUTPUT} characters or items")
    return (items, *args[1:])


BEFORE: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]] = {
    "replace": _before_replace,
    "join": _before_join,
}
"""Checks made before a filter runs, for the filters whose output can outgrow the input."""


def _bounded_filter(name: str, func: F) -> F:
    passes = getattr(func, "jinja_pass_arg", None) is not None
    before = BEFORE.get(name)

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if before is not None:
            head, rest = (args[:1], args[1:]) if passes else ((), args)
            args = (*head, *before(rest, kwargs))
        return _bounded(func(*args, **kwargs))

    return run  # type: ignore[return-value]


@pass_context
def _steps(context: Context, value: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates over: the value, counting steps against the budget."""
    for item in value:
        budget = _BUDGET.get()
        if budget is not None:
            budget.steps -= 1
            if budget.steps < 0:
                raise Limit("too_slow", f"more than {MAX_STEPS} loop steps")
            budget.tick()
        yield item


@pass_context
def _joined(context: Context, value: Any) -> Any:
    """What every ``~`` makes, checked."""
    _tick()
    return _bounded(value)


STEPS, JOINED = "kabinet_steps", "kabinet_joined"


class _Bound(NodeTransformer):
    """Every loop counts its steps; every ``~`` is measured."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, STEPS, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(node, JOINED, [], [], None, None, lineno=node.lineno)


class _Refuse(BaseLoader):
    """A template cannot load another one (the syntax is refused before; this is the
    second line)."""

    def get_source(self, environment: Any, template: str) -> Any:
        raise TemplateNotFound(template, "templates cannot include other templates")


class _Strict(SandboxedEnvironment):
    """The sandbox, stricter: no attribute of anything, no calling methods, every operator
    intercepted and bounded (so none is computed when the template is compiled)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        try:
            return _bounded(super().call_binop(context, operator, left, right))
        except OverflowError:
            raise Limit("number", "the number is too large") from None


# -- the recipient's formats ------------------------------------------------------------------
RECIPIENT_LANGUAGE = "recipient_language"
RECIPIENT_TIMEZONE = "recipient_timezone"
"""Set for each recipient when a message is made: ``date``, ``datetime``, ``money`` and
``number`` write values the way the recipient reads them (the host's formatters)."""


def _who(context: Context) -> tuple[str, str]:
    lang = context.get(RECIPIENT_LANGUAGE)
    tz = context.get(RECIPIENT_TIMEZONE)
    return (
        lang if isinstance(lang, str) and lang else "ru",
        tz if isinstance(tz, str) and tz else "Europe/Moscow",
    )


def _when(value: Any) -> dt.date | dt.datetime | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            found = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return found if found.tzinfo else found.replace(tzinfo=dt.UTC)
    return None


@pass_context
def _date_filter(context: Context, value: Any, fmt: str = "medium") -> Any:
    """``{{ due_date | date }}``: 10 нояб. 2026 г. / Nov 10, 2026 (``short``, ``long``)."""
    found = _when(value)
    if found is None or fmt not in ("short", "medium", "long"):
        return value
    lang, tz = _who(context)
    return i18n.format_date(found, lang, tz, fmt)


@pass_context
def _datetime_filter(context: Context, value: Any, fmt: str = "medium") -> Any:
    """``{{ at | datetime }}``: in the recipient's time zone."""
    found = _when(value)
    if found is None or fmt not in ("short", "medium", "long"):
        return value
    if not isinstance(found, dt.datetime):
        found = dt.datetime.combine(found, dt.time(), dt.UTC)
    lang, tz = _who(context)
    return i18n.format_datetime(found, lang, tz, fmt)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        found = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return found if found.is_finite() and abs(found) < Decimal(10) ** 18 else None


@pass_context
def _money_filter(context: Context, value: Any, currency: Any = "RUB") -> Any:
    """``{{ debt | money(currency) }}``: 205 800,00 ₽ / RUB205,800.00."""
    found = _decimal(value)
    code = str(currency or "RUB").upper()
    if found is None or len(code) != 3 or not code.isalpha():
        return value
    lang, _ = _who(context)
    return i18n.format_money(found, code, lang)


@pass_context
def _number_filter(context: Context, value: Any) -> Any:
    """``{{ weight | number }}``: 12 500,5 / 12,500.5."""
    found = _decimal(value)
    if found is None:
        return value
    lang, _ = _who(context)
    return i18n.format_number(found, lang)


LOCALE_FILTERS: dict[str, Callable[..., Any]] = {
    "date": _date_filter,
    "datetime": _datetime_filter,
    "money": _money_filter,
    "number": _number_filter,
}
"""Filters writing a value in the recipient's language and time zone."""


def _env(autoescape: bool) -> _Strict:
    env = _Strict(
        autoescape=autoescape,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        loader=_Refuse(),
    )
    env.globals.clear()
    env.filters = {name: _bounded_filter(name, JINJA_FILTERS[name]) for name in FILTERS}
    env.filters[STEPS] = _steps
    env.filters[JOINED] = _joined
    env.filters.update(LOCALE_FILTERS)
    return env


TEXT_ENV = _env(False)
HTML_ENV = _env(True)


def env_for(channel: str, part: str) -> _Strict:
    """HTML parts (e-mail HTML, Telegram's HTML parse mode) escape the values."""
    return HTML_ENV if part == "html" or (channel == "telegram" and part == "body") else TEXT_ENV


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
    with _budget(part):
        compiled(channel, part, source)


@functools.lru_cache(maxsize=512)
def compiled(channel: str, part: str, source: str) -> Template:
    """Compiling is most of the cost of a render: each source is checked and compiled once.
    A stored template meets the same checks as one being saved (but for the variables)."""
    tree = _Bound().visit(_parse(channel, part, source))
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
    with _budget(part):
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
                _tick()
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

_WORKERS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kabinet-render")
T = TypeVar("T")


def _each(budget: Budget, func: Callable[..., T], calls: list[tuple[Any, ...]]) -> list[Any]:
    """``func(*args)`` for each of ``calls``, each with :data:`RENDER_SECONDS` of its own;
    a :class:`TemplateError` is the result of its call, not the end of the others."""
    token = _BUDGET.set(budget)
    out: list[Any] = []
    try:
        for args in calls:
            budget.deadline = time.monotonic() + RENDER_SECONDS
            try:
                out.append(func(*args))
            except TemplateError as exc:
                out.append(exc)
    finally:
        _BUDGET.reset(token)
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
