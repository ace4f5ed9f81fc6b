"""Forms of the page kit: a body read into a msgspec struct, refusals that name their field.

One way for every app::

    class NewRole(msgspec.Struct):
        code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
        name_ru: str = ""
        assigned_only: bool = False          # a checkbox: sent or not
        organizations: list[Id] = []         # a repeated key

    @post("/roles/", access=MANAGE)
    async def create(request: Request) -> Response[str]:
        try:
            data = await read_form(request, NewRole)
            await service(request).create_role(data.code, ...)   # may raise a FieldError
        except FieldError as exc:
            return await page(request, "roles/index.html", status_code=exc.status,
                              form=await form_view(request, exc))
        return redirect(request, "/roles/", flash=_("The role was created."))

:func:`read_form` converts each text to its field's type (a whole number, a date, a
choice, a checkbox, a list for a repeated key, an upload) and refuses with
:class:`FormErrors`, every wrong field named. :class:`FieldError` is the one exception that
names a field: an app's own refusals subclass it (``IdentityError``, ``RoleError``). A page
shows it beside the field with the ``field`` macro of ``shell/forms.html``; when it reaches
the API, :mod:`kabinet.problems` answers problem details naming the field.

Messages are English message ids with ``{placeholders}``, translated for the person when
shown (:meth:`FieldError.text`) and formatted in English on the API.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar.datastructures import UploadFile
from msgspec import inspect as mi

from kabinet import i18n

if TYPE_CHECKING:
    from litestar import Request

S = TypeVar("S", bound=msgspec.Struct)

FILL_IN = "Fill this in."
NOT_VALID = "This value is not valid."
SECRET = re.compile(r"password|secret|token", re.IGNORECASE)
"""Fields never sent back to the browser in a form shown again."""
_FALSE = {"", "0", "false", "off", "no"}
_HHMM = re.compile(r"^\d{2}:\d{2}$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}$")


class FieldError(Exception):
    """A refusal a person can act on, naming the form field at fault (``None``: the whole
    form). Apps subclass it for their own refusals.

    ``message`` is an English message id, ``params`` fill its ``{placeholders}``; ``status``
    is the HTTP status when it reaches an answer (400 unless a subclass says otherwise).
    """

    status: int = 400

    def __init__(
        self,
        message: str,
        field: str | None = None,
        *,
        status: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = dict(params or {})
        if status is not None:
            self.status = status
        self.errors: list[FieldError] = [self]
        """Every refusal carried (several for :class:`FormErrors`)."""

    def text(self, lang: str) -> str:
        """The message in ``lang``, its placeholders filled."""
        found = i18n.gettext_(lang, self.message)
        return found.format(**self.params) if self.params else found

    def english(self) -> str:
        """The message as the API answers it."""
        return self.message.format(**self.params) if self.params else self.message


class FormErrors(FieldError):
    """Several fields refused at once (what :func:`read_form` raises)."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        if not errors:
            raise ValueError("FormErrors needs at least one error")
        first = errors[0]
        super().__init__(
            first.message,
            first.field,
            status=max(e.status for e in errors),
            params=first.params,
        )
        self.errors = list(errors)


# --- reading a form into a struct ---------------------------------------------------------


async def read_form(request: Request[Any, Any, Any], into: type[S]) -> S:
    """The request's form body (urlencoded or multipart) as ``into``.

    Each field of the struct is read from the form key of its (encoded) name: a list, set
    or tuple field from every value of a repeated key, a ``bool`` from a checkbox (sent:
    true unless ``0``/``false``/``off``), an :class:`~litestar.datastructures.UploadFile`
    from a file part, anything else from its text, converted to the field's type with its
    ``msgspec.Meta`` bounds checked. An empty text is a missing value (the default, ``None``
    for an optional field, else "Fill this in"), except for a ``str`` field. Keys the
    struct does not name (``csrf_token``) are ignored.

    Raises :class:`FormErrors` naming every field that is wrong; a :class:`FieldError`
    raised by the struct's ``__post_init__`` passes through.
    """
    data = await request.form()
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for info in msgspec.structs.fields(into):
        key = info.encode_name
        sent = [v for v in data.getall(key, []) if v is not None]
        required = info.required
        try:
            value = _read(sent, info.type, required)
        except FieldError as exc:
            exc.field = key
            errors.append(exc)
            continue
        if value is not _MISSING:
            values[info.name] = value
    if errors:
        raise FormErrors(errors)
    try:
        return into(**values)
    except FieldError:
        raise
    except (TypeError, ValueError) as exc:  # a __post_init__ refusing the combination
        raise FieldError(str(exc) or NOT_VALID) from exc


_MISSING: Any = object()


def _unwrap(info: mi.Type) -> tuple[mi.Type, bool]:
    """The type without ``None`` and whether ``None`` is allowed."""
    if isinstance(info, mi.UnionType):
        rest = [t for t in info.types if not isinstance(t, mi.NoneType)]
        optional = len(rest) < len(info.types)
        if len(rest) == 1:
            return rest[0], optional
        return mi.UnionType(tuple(rest)), optional
    return info, False


def _read(sent: list[Any], annotation: Any, required: bool) -> Any:
    info, optional = _unwrap(mi.type_info(annotation))
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        items = [_prepare(v, info.item_type) for v in sent]
        items = [v for v in items if v is not _MISSING]
        if not items and not required:
            return _MISSING
        return _convert(items, annotation, info)
    if isinstance(info, mi.BoolType):
        if not sent:
            return _MISSING if not required else False
        return any(str(v).strip().lower() not in _FALSE for v in sent)
    raw = _prepare(sent[0], info) if sent else _MISSING
    if optional and raw == "":
        return None  # an emptied optional text: cleared
    if raw is _MISSING:
        if optional and sent:
            return None  # an emptied optional field: cleared
        if required:
            raise FieldError(FILL_IN)
        return _MISSING
    return _convert(raw, annotation, info)


def _prepare(value: Any, info: mi.Type) -> Any:
    """A sent value ready for msgspec: an empty text is missing (but for ``str``); the
    times a browser sends (``12:30``, ``2026-03-01T12:30``) gain their seconds."""
    info = _unwrap(info)[0]
    if isinstance(value, UploadFile):
        return value if value.filename else _MISSING
    text = str(value)
    if isinstance(info, mi.StrType):
        return text
    text = text.strip()
    if not text:
        return _MISSING
    if isinstance(info, mi.TimeType) and _HHMM.match(text):
        return text + ":00"
    if isinstance(info, mi.DateTimeType) and _LOCAL.match(text):
        return text.replace(" ", "T") + ":00"
    return text


def _convert(raw: Any, annotation: Any, info: mi.Type) -> Any:
    try:
        return msgspec.convert(raw, annotation, strict=False)
    except msgspec.ValidationError:
        pass
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        item = _item_annotation(annotation)
        for each in raw:  # the first item at fault says what is expected
            try:
                msgspec.convert(each, item, strict=False)
            except msgspec.ValidationError:
                raise _refusal(each, info.item_type) from None
        low, high = info.min_length, info.max_length
        if low is not None and len(raw) < low:
            raise FieldError("Choose at least {n}.", params={"n": low})
        if high is not None and len(raw) > high:
            raise FieldError("Choose at most {n}.", params={"n": high})
    raise _refusal(raw, info)


def _item_annotation(annotation: Any) -> Any:
    """``X`` of ``list[X]`` (through ``Annotated`` and ``| None``)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (list, set, frozenset, tuple):
            return args[0] if args else Any
        if len(args) == 1:
            annotation = args[0]
            continue
        return Any


def _refusal(raw: Any, info: mi.Type) -> FieldError:
    """What the person must fix, said from the field's type (never msgspec's words)."""
    info = _unwrap(info)[0]
    if isinstance(info, mi.IntType):
        return _number("Enter a whole number", info)
    if isinstance(info, (mi.FloatType, mi.DecimalType)):
        return _number("Enter a number", info)
    if isinstance(info, mi.StrType):
        text = str(raw)
        if info.max_length is not None and len(text) > info.max_length:
            return FieldError("At most {n} characters.", params={"n": info.max_length})
        if info.min_length is not None and len(text) < info.min_length:
            if info.min_length == 1:
                return FieldError(FILL_IN)
            return FieldError("At least {n} characters.", params={"n": info.min_length})
        return FieldError(NOT_VALID)
    if isinstance(info, mi.DateType):
        return FieldError("Enter a date as YYYY-MM-DD.")
    if isinstance(info, mi.DateTimeType):
        return FieldError("Enter a date and time.")
    if isinstance(info, mi.TimeType):
        return FieldError("Enter a time as HH:MM.")
    if isinstance(info, (mi.EnumType, mi.LiteralType)):
        return FieldError("Choose one of the offered values.")
    if isinstance(info, mi.CustomType) and info.cls is UploadFile:
        return FieldError("Choose a file.")
    return FieldError(NOT_VALID)


def _number(start: str, info: Any) -> FieldError:
    ge, gt = getattr(info, "ge", None), getattr(info, "gt", None)
    le, lt = getattr(info, "le", None), getattr(info, "lt", None)
    whole = isinstance(info, mi.IntType)  # x > 0 is x >= 1 only for whole numbers
    low = ge if ge is not None else (gt + 1 if gt is not None and whole else None)
    high = le if le is not None else (lt - 1 if lt is not None and whole else None)
    if whole and high is not None and high >= 2**31 - 1:
        high = None  # a column's bound says nothing a person needs to know
    if low is not None and high is not None:
        return FieldError(start + " from {low} to {high}.", params={"low": low, "high": high})
    if low is not None:
        return FieldError(start + " of at least {low}.", params={"low": low})
    if high is not None:
        return FieldError(start + " of at most {high}.", params={"high": high})
    return FieldError(start + ".")


# --- showing a form again ---------------------------------------------------------------


@dataclasses.dataclass
class FormView:
    """What a template needs to show a form again: the values as sent (never a password)
    and each field's error in the person's language ("" for the whole form).

    ``shell/forms.html`` reads it: ``{{ field(form, "email", _("E-mail")) }}``.
    """

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    def value(self, name: str, default: Any = "") -> Any:
        """The value sent for ``name`` (the first, for a repeated key)."""
        found = self.values.get(name, default)
        if isinstance(found, list):
            return found[0] if found else default
        return found

    def chosen(self, name: str) -> list[str]:
        """Every value sent for ``name`` (checkboxes, a multiple select), as texts."""
        found = self.values.get(name, [])
        items = found if isinstance(found, list) else [found]
        return [str(v) for v in items]

    def error(self, name: str) -> str:
        return self.errors.get(name, "")

    def others(self, shown: Iterable[str]) -> list[str]:
        """The errors of fields the page does not show (and of the whole form)."""
        seen = set(shown)
        return [message for name, message in self.errors.items() if name not in seen]


EMPTY_FORM = FormView()


async def form_view(
    request: Request[Any, Any, Any],
    error: FieldError | None = None,
    *,
    values: Mapping[str, Any] | None = None,
) -> FormView:
    """The form of ``request`` to show again with ``error`` beside its fields.

    ``values`` default to what the form sent (secret fields left out, see :data:`SECRET`);
    pass them to show other values (a form not read from this request).
    """
    from kabinet.pages import language

    if values is None:
        values = sent_values(await request.form())
    lang = language(request)
    errors: dict[str, str] = {}
    for each in error.errors if error is not None else ():
        key = each.field or ""
        errors.setdefault(key, each.text(lang))
    return FormView(values=dict(values), errors=errors)


def sent_values(data: Any) -> dict[str, Any]:
    """A form's texts by key (a list for a repeated key), secret fields and files left out."""
    found: dict[str, Any] = {}
    for key, value in data.multi_items():
        if not isinstance(value, str) or SECRET.search(key) or key == "csrf_token":
            continue
        if key in found:
            previous = found[key]
            found[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            found[key] = value
    return found


__all__ = [
    "EMPTY_FORM",
    "FieldError",
    "FormErrors",
    "FormView",
    "form_view",
    "read_form",
    "sent_values",
]
