"""The Jinja2 sandbox of the notification templates: what a render may cost.

Staff write the templates, so a template is untrusted code (see :mod:`.render` for the
three lines that hold). This module is the second line, the render's budget: every
operator is intercepted (``**`` and ``*`` may not make a number of more than
:data:`MAX_BITS` bits, ``*``/``+``/``~``/filters no text or list longer than
:data:`MAX_OUTPUT`, ``%`` does not format text), every loop counts its steps
(:data:`MAX_STEPS` per part) and each step looks at the clock (:data:`RENDER_SECONDS`).
Only the filters of :data:`FILTERS` (each bounded) and the recipient's formats
(:data:`LOCALE_FILTERS`: dates, money and numbers in the recipient's language and time
zone) exist; nothing is loaded (no ``include``) and no global is reachable.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from jinja2 import BaseLoader, StrictUndefined, nodes, pass_context
from jinja2.exceptions import TemplateNotFound
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.visitor import NodeTransformer

from kabinet import i18n

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


BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "kabinet_notifications_budget", default=None
)


def tick() -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.tick()


@contextlib.contextmanager
def part_budget(part: str) -> Iterator[Budget]:
    """The budget of rendering ``part``: the caller's clock if one runs, fresh steps."""
    outer = BUDGET.get()
    budget = outer or Budget(deadline=time.monotonic() + RENDER_SECONDS)
    budget.steps, budget.part = MAX_STEPS, part
    token = BUDGET.set(budget)
    try:
        yield budget
    finally:
        BUDGET.reset(token)


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
        tick()
        if before is not None:
            head, rest = (args[:1], args[1:]) if passes else ((), args)
            args = (*head, *before(rest, kwargs))
        return _bounded(func(*args, **kwargs))

    return run  # type: ignore[return-value]


@pass_context
def _steps(context: Context, value: Any) -> Iterator[Any]:
    """What every ``{% for %}`` iterates over: the value, counting steps against the budget."""
    for item in value:
        budget = BUDGET.get()
        if budget is not None:
            budget.steps -= 1
            if budget.steps < 0:
                raise Limit("too_slow", f"more than {MAX_STEPS} loop steps")
            budget.tick()
        yield item


@pass_context
def _joined(context: Context, value: Any) -> Any:
    """What every ``~`` makes, checked."""
    tick()
    return _bounded(value)


STEPS, JOINED = "kabinet_steps", "kabinet_joined"


class Bound(NodeTransformer):
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


class Strict(SandboxedEnvironment):
    """The sandbox, stricter: no attribute of anything, no calling methods, every operator
    intercepted and bounded (so none is computed when the template is compiled)."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        tick()
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


def _env(autoescape: bool) -> Strict:
    env = Strict(
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


def env_for(channel: str, part: str) -> Strict:
    """HTML parts (e-mail HTML, Telegram's HTML parse mode) escape the values."""
    return HTML_ENV if part == "html" or (channel == "telegram" and part == "body") else TEXT_ENV
