"""The forms of the dictionaries pages, read by the page kit (:func:`kabinet.forms.read_form`).

Texts stay texts where the service checks them (codes, names, a document's dates) and
refuses with the field named; an entry's values are read as the texts typed and parsed
by their field's kind (:func:`kabinet_dictionaries.kinds.parse`, which also takes
``12,5`` and ``31.12.2026``). The entry form's fields depend on the dictionary:
:func:`entry_form` makes its struct.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from litestar.datastructures import UploadFile

from kabinet_dictionaries.documents import DocumentMeta
from kabinet_dictionaries.documents import meta_from as docs_meta_from
from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.structure import TypeInfo


class NewType(msgspec.Struct):
    code: str = ""
    name_ru: str = ""
    name_en: str = ""


class TypeChange(msgspec.Struct):
    name_ru: str = ""
    name_en: str = ""
    editor_roles: list[str] = []


class Publication(msgspec.Struct):
    publish: str = ""
    organizations: list[str] = []
    """The picker posts one value per organization; the number field without the picker
    one text of numbers separated by spaces or commas: both are read by :meth:`ids`."""

    def ids(self) -> list[str]:
        return " ".join(self.organizations).replace(",", " ").split()


class FieldForm(msgspec.Struct):
    """A field of the structure editor (choices one per line: ``code=Название|Name``)."""

    code: str = ""
    name_ru: str = ""
    name_en: str = ""
    kind: str = "text"
    required: bool = False
    unique: bool = False
    default: str = ""
    choices: str = ""
    precision: int | None = None
    reference: str = ""

    def definition(self) -> FieldDef:
        choices = []
        for line in self.choices.splitlines():
            code, _, label = line.strip().partition("=")
            if code.strip():
                ru, _, en = label.partition("|")
                choices.append(
                    Choice(
                        code=code.strip(), ru=(ru or code).strip(), en=(en or ru or code).strip()
                    )
                )
        return FieldDef(
            code=self.code.strip(),
            name_ru=self.name_ru,
            name_en=self.name_en,
            kind=self.kind,  # type: ignore[arg-type]
            required=self.required,
            unique=self.unique,
            default=self.default or None,
            choices=choices,
            precision=self.precision,
            reference=self.reference or None,
        )


def choices_text(field: FieldDef) -> str:
    """The choices as the editor shows them (what :meth:`FieldForm.definition` reads)."""
    return "\n".join(f"{c.code}={c.ru}|{c.en}" for c in field.choices)


class Move(msgspec.Struct):
    to: str = ""


class Upload(msgspec.Struct):
    """One file (a table to import, a document's new version)."""

    file: UploadFile | None = None


class DocumentForm(msgspec.Struct):
    """A document's metadata (dates as typed: the document checks them) and, on upload,
    its file."""

    title: str = ""
    kind: str = ""
    number: str = ""
    date: str = ""
    organization_id: str = ""
    valid_from: str = ""
    valid_to: str = ""
    file: UploadFile | None = None

    def meta(self) -> DocumentMeta:
        return docs_meta_from(lambda name: str(getattr(self, name)))


# -- an entry -------------------------------------------------------------------------------


def value_key(code: str) -> str:
    """The form key of a field's value (``v.<code>``)."""
    return f"v.{code}"


def keep_key(code: str) -> str:
    """The form key of a file field's "keep the file" box."""
    return f"v.{code}.keep"


@functools.lru_cache(maxsize=256)
def _entry_struct(shape: tuple[tuple[str, str], ...]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any, Any]] = [("published", bool, False)]
    for index, (code, kind) in enumerate(shape):
        if kind == "bool":
            fields.append((f"f{index}", bool, msgspec.field(default=False, name=value_key(code))))
        elif kind == "file":
            fields.append(
                (f"f{index}", UploadFile | None, msgspec.field(default=None, name=value_key(code)))
            )
            fields.append((f"k{index}", bool, msgspec.field(default=False, name=keep_key(code))))
        else:
            fields.append((f"f{index}", str, msgspec.field(default="", name=value_key(code))))
    return msgspec.defstruct("EntryForm", fields)


def entry_form(found: TypeInfo) -> type[msgspec.Struct]:
    """The struct of the entry form of ``found``: ``v.<code>`` for each field (a text, a
    checkbox, a file and its ``v.<code>.keep`` box), and ``published``."""
    return _entry_struct(tuple((f.code, f.kind) for f in found.fields))


def entry_values(found: TypeInfo, data: msgspec.Struct) -> tuple[dict[str, Any], bool]:
    """(the values to save by field code, published) from a read entry form. A checkbox
    not sent is "no"; a file field is left as it is when its file is kept and none is
    sent, cleared when not kept; an uploaded file is stored by the page (see
    :func:`uploads`)."""
    raw: dict[str, Any] = {}
    for index, field in enumerate(found.fields):
        value = getattr(data, f"f{index}")
        if field.kind == "file":
            if value is None and getattr(data, f"k{index}"):
                continue
            raw[field.code] = None
        elif field.kind == "datetime":
            raw[field.code] = str(value).replace("T", " ")
        else:
            raw[field.code] = value
    return raw, bool(getattr(data, "published", False))


def uploads(found: TypeInfo, data: msgspec.Struct) -> dict[str, UploadFile]:
    """The files sent for the file fields, by field code."""
    sent: dict[str, UploadFile] = {}
    for index, field in enumerate(found.fields):
        if field.kind == "file" and (upload := getattr(data, f"f{index}")) is not None:
            sent[field.code] = upload
    return sent
