"""From 1C objects to the structs the owning apps' entity sinks accept.

The reference configuration's names (``reference.toml``, data) are the defaults here; a
source's settings override any set, feed, field or value
(:class:`kabinet_integration.settings.Source`). The integration app knows the sinks only
by name and struct (the ``entity_sinks`` hook), never a table or an app.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from kabinet.contrib import EntitySink, Rejection
from kabinet_integration.settings import Source

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01"

REFERENCE: dict[str, Any] = tomllib.loads(
    (Path(__file__).parent / "reference.toml").read_text(encoding="utf-8")
)
"""The reference 1C configuration as data: ``sets``, ``feeds``, ``fields``, ``values``
(``reference.toml``); a source's settings override any key."""

SETS: dict[str, str] = dict(REFERENCE["sets"])
"""Entity -> the reference's 1C entity set."""
FIELDS: dict[str, dict[str, str]] = {k: dict(v) for k, v in REFERENCE["fields"].items()}
"""Entity (or ``entity.section`` for a tabular section) -> portal field -> 1C field."""
VALUES: dict[str, dict[str, dict[str, str]]] = {
    e: {f: dict(m) for f, m in v.items()} for e, v in REFERENCE["values"].items()
}
"""Entity -> portal field -> 1C value -> portal value. A value configured for a portal
value replaces the reference value(s) of that portal value, so that what is written back
is the configured one."""
SINKS: dict[str, str] = {e: f["sink"] for e, f in REFERENCE["feeds"].items() if f.get("sink")}
"""Entity -> the entity sink the reference feeds (data for forms and the write-back; the
sync reads each source's :attr:`Names.feeds`)."""
ORDER: tuple[str, ...] = tuple(
    e for e, f in REFERENCE["feeds"].items() if f.get("kind", "objects") == "objects"
)
"""The reference's entities read through the change register (the choices of a form; a
run orders its entities by their sinks' ``depends_on``)."""

ANSWER = ("external_id", "portal_id", "status", "answer", "order")
"""The fields of ``Document_ЗапросКлиента`` the read side takes back (entity ``answer``),
named under ``request`` like the rest of the document: configured once. ``order``
(``Заявка_Key``): the order 1C created for an accepted new order."""


@dataclasses.dataclass(frozen=True)
class FeedSpec:
    """How one entity reaches its sink, the reference's overridden by the source's."""

    entity: str
    sink: str
    kind: str = "objects"
    owner: str = ""
    files: str = ""
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def feeds_of(source: Source) -> dict[str, FeedSpec]:
    """Entity -> its feed: every reference feed and every one the source configures."""
    out: dict[str, FeedSpec] = {}
    configured = {e: msgspec.to_builtins(f) for e, f in source.feeds.items()}
    for entity in {**REFERENCE["feeds"], **configured}:
        merged = {**REFERENCE["feeds"].get(entity, {}), **configured.get(entity, {})}
        out[entity] = FeedSpec(
            entity,
            sink=str(merged.get("sink") or ""),
            kind=str(merged.get("kind") or "objects"),
            owner=str(merged.get("owner") or ""),
            files=str(merged.get("files") or ""),
            constants=dict(merged.get("constants") or {}),
        )
    if not source.invoice_files and "invoice_file" in out:
        out["invoice_file"] = dataclasses.replace(out["invoice_file"], sink="")
    return out


class MappingError(ValueError):
    """A record that cannot be mapped: the reason goes to quarantine."""

    @property
    def reason(self) -> str:
        """The reason as raised: a :class:`~kabinet.contrib.Rejection` keeps its code."""
        first = self.args[0] if self.args else ""
        return first if isinstance(first, str) else str(self)


@dataclasses.dataclass(frozen=True)
class Names:
    """The effective names of one source: the reference's, overridden by its settings."""

    sets: Mapping[str, str]
    fields: Mapping[str, Mapping[str, str]]
    values: Mapping[str, Mapping[str, Mapping[str, str]]]
    feeds: Mapping[str, FeedSpec] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, source: Source) -> Names:
        fields = {k: {**FIELDS.get(k, {}), **v} for k, v in {**FIELDS, **source.fields}.items()}
        values: dict[str, dict[str, dict[str, str]]] = {}
        for entity in {*VALUES, *source.values}:
            base = VALUES.get(entity, {})
            extra = source.values.get(entity, {})
            values[entity] = {
                f: _replaced(base.get(f, {}), extra.get(f, {})) for f in {*base, *extra}
            }
        # The client request is one 1C document, written as "request" and read back as
        # "answer": the read side takes the request's names and values.
        fields["answer"] = {f: fields["request"][f] for f in ANSWER}
        values["answer"] = {"status": values["request"]["status"]}
        return cls(
            sets={**SETS, **source.sets}, fields=fields, values=values, feeds=feeds_of(source)
        )

    @functools.cached_property
    def _entities(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for entity, set_name in self.sets.items():
            found.setdefault(set_name, entity)
            found.setdefault(f"StandardODATA.{set_name}", entity)
        return found

    def entity_of_set(self, name: str) -> str | None:
        """``Document_X`` or ``StandardODATA.Document_X`` -> the entity it holds."""
        return self._entities.get(name)

    def to_onec(self, entity: str, field: str, value: str) -> str:
        """A portal value written back (``cancel`` -> ``Отмена``)."""
        for onec, portal in self.values.get(entity, {}).get(field, {}).items():
            if portal == value:
                return onec
        return value


def counterparty_of(
    names: Names, entity: str, ref: str, obj: Mapping[str, Any] | None
) -> str | None:
    """The 1C id of the counterparty a record belongs to, as 1C sent it (a quarantined
    record is shown to the staff of that counterparty's organization): a counterparty's
    own id, else the value of the entity's field mapped to ``counterparty``; ``None``
    when it names none (an answer, a balance, a file, an empty reference)."""
    if entity == "counterparty":
        found: Any = ref
    else:
        field = names.fields.get(entity, {}).get("counterparty")
        found = obj.get(field) if field and isinstance(obj, Mapping) else None
    return counterparty_ref(found)


def counterparty_ref(found: Any) -> str | None:
    """``found`` as a counterparty's 1C id to store beside a record (quarantined, outbound,
    a file's): a non-empty string other than 1C's empty reference, at most 100
    characters; ``None`` otherwise."""
    if not isinstance(found, str) or not found.strip() or found == EMPTY_GUID:
        return None
    return found[:100]


def _replaced(base: Mapping[str, str], configured: Mapping[str, str]) -> dict[str, str]:
    """The reference values of a field with the configured ones instead: a portal value
    configured keeps none of its reference 1C values (written back, it would be one)."""
    taken = set(configured.values())
    return {**{k: v for k, v in base.items() if v not in taken}, **configured}


def changes_to_onec(
    names: Names, struct: type[Any], changes: Mapping[str, Any], entity: str = "order"
) -> dict[str, Any]:
    """The fields a client asks to change as ``ИзмененныеПоля`` holds them: the order's
    1C attribute names through the mapping the read side uses (so a renamed
    configuration works) and 1C's JSON formats (dates as local ``YYYY-MM-DDTHH:MM:SS``,
    numbers as numbers, mapped values as 1C's); raises MappingError naming the field."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    types = {f.name: f.type for f in info.fields}
    onec = names.fields.get(entity, {})
    out: dict[str, Any] = {}
    for name, value in changes.items():
        target = onec.get(name)
        if target is None or name not in types:
            raise MappingError(f"{name}: no 1C attribute is configured for it ({entity}.{name})")
        mapped = names.values.get(entity, {}).get(name)
        if mapped is not None:
            out[target] = names.to_onec(entity, name, str(value))
            continue
        out[target] = _onec_value(types[name], value, name)
    return out


def _onec_value(kind: Any, value: Any, name: str) -> Any:
    kinds = kind.types if isinstance(kind, msgspec.inspect.UnionType) else (kind,)
    try:
        for k in kinds:
            if isinstance(k, msgspec.inspect.DateTimeType):
                moment = dt.datetime.fromisoformat(str(value))
                return moment.replace(tzinfo=None).isoformat(timespec="seconds")
            if isinstance(k, msgspec.inspect.DateType):
                day = dt.date.fromisoformat(str(value)[:10])
                return f"{day.isoformat()}T00:00:00"
            if isinstance(k, msgspec.inspect.IntType):
                return int(value)
            if isinstance(k, msgspec.inspect.FloatType | msgspec.inspect.DecimalType):
                return float(value)
            if isinstance(k, msgspec.inspect.BoolType):
                return value in (True, "true", "1")
    except ValueError:
        raise MappingError(f"{name}: {value!r} is not a value of its type") from None
    return "" if value is None else str(value)


def _guid(value: Any) -> Any:
    return None if value in (EMPTY_GUID, "") else value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        return None if value.startswith(EMPTY_DATE) or not value else value[:10]
    return value


def _datetime(value: Any) -> Any:
    if isinstance(value, str) and (value.startswith(EMPTY_DATE) or not value):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        # 1C's dates are ISO text: a number is refused, not read as a Unix timestamp
        return f"{value!r} is not a date"
    return value


_NUMBER = re.compile(r"^\s*[-+]?[0-9]+(\.[0-9]*)?\s*$")


def _converter(info: Any) -> Callable[[Any], Any] | None:
    """How a 1C value becomes what the struct field accepts, by the field's type."""
    kinds = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    for kind in kinds:
        if isinstance(kind, msgspec.inspect.DateType):
            return _date
        if isinstance(kind, msgspec.inspect.DateTimeType):
            return _datetime
    return None


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one entity's 1C object becomes the sink's struct."""

    entity: str
    sink: EntitySink
    steps: tuple[tuple[str, str, Callable[[Any], Any] | None, Mapping[str, str] | None], ...]
    sections: Mapping[str, tuple[type[msgspec.Struct], Plan]]
    required: tuple[str, ...]
    wire: Wire | None = None
    """The fast path: the object's JSON decoded straight into the sink's fields."""
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Sink fields every record gets (the feed's ``constants``)."""

    @property
    def key_field(self) -> str:
        return self.sink.key


def plan(names: Names, entity: str, sink: EntitySink, struct: type[Any] | None = None) -> Plan:
    """The mapping plan of ``entity`` into ``struct`` (the sink's, or a section's)."""
    struct = struct or sink.struct
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    onec = names.fields.get(entity, {})
    values = names.values.get(entity, {})
    steps: list[tuple[str, str, Callable[[Any], Any] | None, Mapping[str, str] | None]] = []
    sections: dict[str, tuple[type[msgspec.Struct], Plan]] = {}
    for f in info.fields:
        if isinstance(f.type, msgspec.inspect.DictType):
            # A mapping field filled key by key: "values.code" = "Code" (no fast path).
            for key_name, key_source in onec.items():
                head, _, tail = key_name.partition(".")
                if head == f.name and tail:
                    steps.append((key_name, key_source, None, values.get(key_name)))
        source_name = onec.get(f.name)
        if source_name is None:
            continue
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        for kind in kinds:
            if isinstance(kind, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
                item = kind.item_type
                if isinstance(item, msgspec.inspect.StructType):
                    sections[f.name] = (item.cls, plan(names, f"{entity}.{f.name}", sink, item.cls))
        convert = _converter(f.type)
        if source_name.endswith("_Key"):
            convert = _guid
        steps.append((f.name, source_name, convert, values.get(f.name)))
    required = tuple(f.name for f in info.fields if f.required)
    feed = names.feeds.get(entity)
    constants = dict(feed.constants) if feed is not None and "." not in entity else {}
    out = Plan(entity, sink, tuple(steps), sections, required, constants=constants)
    if constants or any("." in name for name, *_ in steps):
        return out  # the general way only
    key = names.fields.get(entity, {}).get("external_id", "Ref_Key") if "." not in entity else None
    return dataclasses.replace(out, wire=wire_of(out, struct, key))


def to_dict(p: Plan, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The 1C object as the struct's fields (not yet validated); raises MappingError."""
    out: dict[str, Any] = dict(p.constants)
    for name, source_name, convert, values in p.steps:
        if source_name not in obj:
            continue
        value = obj[source_name]
        if "." in name:  # one key of a mapping field
            head, _, tail = name.partition(".")
            if values is not None and value is not None:
                value = values.get(value, value)
            out.setdefault(head, {})[tail] = value
            continue
        if name in p.sections:
            section = p.sections[name][1]
            out[name] = [to_dict(section, row) for row in value or ()]
            continue
        if convert is not None:
            value = convert(value)
        if values is not None and value is not None:
            if value not in values:
                raise MappingError(
                    Rejection(
                        f"{name}: unknown value {value!r} of {source_name}",
                        "unknown_value",
                        field=name,
                        value=str(value),
                    )
                )
            value = values[value]
        out[name] = value
    return out


def decode(p: Plan, obj: Mapping[str, Any]) -> msgspec.Struct:
    """One 1C object as the sink's struct; raises MappingError with the reason."""
    try:
        record: msgspec.Struct = msgspec.convert(to_dict(p, obj), p.sink.struct, strict=False)
    except msgspec.ValidationError as exc:
        raise MappingError(str(exc)) from None
    return record


# -- the fast path -------------------------------------------------------------------------
# A page of objects is decoded from its JSON straight into a "wire" struct per entity: the
# sink's fields under their 1C names (``rename``), the sink's types where a 1C value needs no
# conversion, the raw value where it does (dates, empty references, mapped values), which a
# few lines of Python then finish. It gives the very record :func:`decode` gives; whatever
# it cannot tell (a wrong type, a missing field, an unknown value, an empty reference where
# one is required) falls back to :func:`decode`, which raises the reason.

PLAIN, DATE, DATETIME, GUID = "plain", "date", "datetime", "guid"


class Fallback(Exception):
    """The fast path cannot tell: decode the object the general way."""


@dataclasses.dataclass(frozen=True)
class Wire:
    """How to decode one entity's (or section line's) JSON into the sink's struct."""

    cls: type[msgspec.Struct]
    decoder: msgspec.json.Decoder[Any]
    struct: type[msgspec.Struct]
    special: tuple[tuple[str, str, Mapping[str, str] | None, bool, Wire | None], ...]
    """(field, kind, value map, nullable, section) of the fields finished in Python."""
    extras: tuple[str, ...]
    """Wire fields that are not the struct's (the object's id and version)."""
    ref: str | None = None
    """The wire field holding the object's id (top-level entities)."""
    version: str | None = None
    """The wire field holding ``DataVersion``."""
    make: Callable[[Any], Any] = lambda obj: None
    """The sink's struct from a decoded wire object (compiled for the fields that need
    finishing); raises Fallback."""


def _nullable(kind: Any) -> bool:
    return kind is Any or kind is None or type(None) in getattr(kind, "__args__", ())


def wire_of(p: Plan, struct: type[Any], key: str | None) -> Wire | None:
    """The fast path of ``p`` (None where the names or types do not allow one)."""
    try:
        return _wire(p, struct, key)
    except (TypeError, ValueError, msgspec.ValidationError):
        return None


def _wire(p: Plan, struct: type[Any], key: str | None) -> Wire | None:
    steps = {name: (source, convert, values) for name, source, convert, values in p.steps}
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    special: list[tuple[str, str, Mapping[str, str] | None, bool, Wire | None]] = []
    for f in msgspec.structs.fields(struct):
        if f.encode_name != f.name:
            return None
        step = steps.get(f.name)
        if step is None:
            if f.required:
                return None  # never sent: decode() says so
            continue
        source, convert, values = step
        rename[f.name] = source
        nullable = _nullable(f.type)
        if f.name in p.sections:
            line = p.sections[f.name][1].wire
            if line is None:
                return None
            section: Any = tuple[line.cls, ...]  # type: ignore[name-defined]
            fields.append((f.name, section | None | msgspec.UnsetType, msgspec.UNSET))
            special.append((f.name, "section", None, nullable, line))
            continue
        kinds: dict[Any, str] = {_date: DATE, _datetime: DATETIME, _guid: GUID}
        kind = kinds.get(convert, PLAIN)
        if kind == PLAIN and values is None:
            if f.required:
                fields.append((f.name, f.type, msgspec.NODEFAULT))
            elif f.default_factory is not msgspec.NODEFAULT:
                fields.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
            else:
                fields.append((f.name, f.type, f.default))
            continue
        for mapped in (values or {}).values():
            msgspec.convert(mapped, f.type)  # a portal value the field cannot take: no fast path
        raw = dt.datetime if kind == DATETIME else str
        fields.append((f.name, raw | None | msgspec.UnsetType, msgspec.UNSET))
        special.append((f.name, kind, values, nullable, None))
    extras = []
    ref = version = None
    if key is not None:
        by_source = {source: name for name, source in rename.items()}
        ref = by_source.get(key)
        if ref is None:
            ref = "wire_ref"
            fields.append((ref, str, msgspec.NODEFAULT))
            rename[ref] = key
            extras.append(ref)
        version = by_source.get("DataVersion")
        if version is None:
            version = "wire_version"
            fields.append((version, str, ""))
            rename[version] = "DataVersion"
            extras.append(version)
    if len(set(rename.values())) != len(rename):
        return None  # two fields from one 1C field
    spec = [(n, t) if d is msgspec.NODEFAULT else (n, t, d) for n, t, d in fields]
    # No reference cycles in decoded JSON: not tracked by the garbage collector.
    kind_ = msgspec.defstruct(f"Wire_{p.entity}", spec, kw_only=True, rename=rename, gc=False)
    wire = Wire(
        kind_,
        msgspec.json.Decoder(kind_, strict=False),
        struct,
        tuple(special),
        tuple(extras),
        ref,
        version,
    )
    return dataclasses.replace(wire, make=_compile(wire))


def _day(value: str | None, name: str) -> dt.date | None:
    """A 1C date-time (``2025-02-01T00:00:00``) as a date; 1C's empty date as None."""
    if value is None or not value or value.startswith(EMPTY_DATE):
        return None
    day = value[:10]
    if len(day) != 10 or day[4] != "-" or day[7] != "-":
        raise Fallback(name)
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        raise Fallback(name) from None


def _compile(wire: Wire) -> Callable[[Any], Any]:
    """The finishing of ``wire``'s objects as straight-line Python, generated from the
    fields that need it and ``exec``'d once per entity.

    Measured (``bench/wire_finish.py``, 20,000 orders as 1C serves them, CPU time, two
    runs; docs/performance.md): decoding an order costs 4.5 µs, finishing it here 6.2-6.5 µs
    more; a closure looping over ``wire.special`` with the same semantics costs 7.6-8.0 µs,
    +13 % on decode and finish together (+23 % on the finishing), and one calling a
    converter chosen per field +17 %. Past the ~10 % the generated code had to beat to
    stay, so it stays; the bench checks both give equal structs (or both Fallback)."""
    env: dict[str, Any] = {
        "asdict": asdict,
        "UNSET": msgspec.UNSET,
        "Fallback": Fallback,
        "S": wire.struct,
        "day": _day,
        "EMPTY": EMPTY_GUID,
    }
    code = ["def make(obj):", " try:", "  v = asdict(obj)"]
    code += [f"  del v[{name!r}]" for name in wire.extras]
    for i, (name, kind, mapping, nullable, line) in enumerate(wire.special):
        n = repr(name)
        code += [f"  x = v[{n}]", "  if x is UNSET:", f"   del v[{n}]", "  else:"]
        if kind == "section":
            assert line is not None
            if line.special or line.extras:
                env[f"L{i}"] = line.make
                code.append(f"   v[{n}] = () if x is None else tuple([L{i}(y) for y in x])")
            else:
                env[f"L{i}"] = line.struct
                code.append(
                    f"   v[{n}] = () if x is None else tuple([L{i}(**asdict(y)) for y in x])"
                )
            continue
        if kind == DATE:
            code.append(f"   x = day(x, {n})")
        elif kind == DATETIME:
            # 1C's times carry no zone: one with a zone may be a number read as a timestamp
            # (refused by the general path) or a zone 1C was given (kept by it).
            code.append("   if x is not None and x.tzinfo is not None:")
            code.append(f"    raise Fallback({n})")
            code.append("   if x is not None and x.year == 1 and x.month == 1 and x.day == 1:")
            code.append("    x = None")
        elif kind == GUID:
            code.append("   if x == EMPTY or x == '':")
            code.append("    x = None")
        if mapping is not None:
            env[f"M{i}"] = mapping
            code += [
                "   if x is not None:",
                f"    if x not in M{i}:",
                f"     raise Fallback({n})",
                f"    x = M{i}[x]",
            ]
        if not nullable:
            code += ["   if x is None:", f"    raise Fallback({n})"]
        code.append(f"   v[{n}] = x")
    code += [
        "  return S(**v)",
        " except (TypeError, ValueError) as exc:  # the structs' own checks (__post_init__)",
        "  raise Fallback(str(exc)) from None",
    ]
    exec("\n".join(code), env)  # noqa: S102 - our own code, from the struct's fields
    made: Callable[[Any], Any] = env["make"]
    return made


asdict = msgspec.structs.asdict


def finish(wire: Wire, obj: Any) -> Any:
    """The sink's struct from a decoded wire object; raises Fallback."""
    return wire.make(obj)


def tombstone(p: Plan, remembered: Mapping[str, Any]) -> msgspec.Struct:
    """A deleted record for an object 1C no longer has, from what was remembered of it."""
    try:
        record: msgspec.Struct = msgspec.convert(
            {**p.constants, **remembered, "deleted": True}, p.sink.struct, strict=False
        )
    except msgspec.ValidationError as exc:
        raise MappingError(
            Rejection(f"cannot mark deleted: {exc}", "cannot_delete", detail=str(exc))
        ) from None
    return record


def identity(p: Plan, record: msgspec.Struct) -> dict[str, Any]:
    """The required fields of a record: enough to mark it deleted later."""
    return msgspec.to_builtins({f: getattr(record, f) for f in p.required})  # type: ignore[no-any-return]


def key_of(p: Plan, obj: Mapping[str, Any]) -> str:
    """The production system's id of an object (its ``Ref_Key`` by default)."""
    source_name = {n: s for n, s, _c, _v in p.steps}.get(p.key_field, "Ref_Key")
    return str(obj.get(source_name) or obj.get("Ref_Key") or "")
