"""Finishing decoded 1C orders: the generated (exec'd) code against a plain loop.

The fast path of the integration app decodes an object's JSON straight into a "wire"
struct (``msgspec``), then a finishing function turns it into the sink's struct: dates from
1C's text, empty references and dates to None, mapped values (``Оформлена`` ->
``registered``), the sections' lines (``kabinet_integration.mapping``). That function is
generated per entity as straight-line Python and ``exec``'d (``mapping._compile``). This
bench asks whether it earns its place against a closure that loops over ``wire.special``
with the very same semantics (written here: :func:`looped`).

Built: the real plan and wire of the orders entity (``Document_ЗаявкаНаПеревозку``) with
the reference names and the shipments app's sink, ``--objects`` orders made by the local
1C's generator (``kabinet_integration_testing.generate``: two services, a vehicle and a
document each, in every status) as 1C serves them, one JSON document each; one in
``--broken-every`` is broken the ways the fast path cannot tell (unknown status, empty
required reference, empty required date, a number for a date...), one in as many others
carries the odd but valid forms (empty references, a null section, numbers as text).
First both finishers are checked to give equal structs, or both a Fallback, for every
object.

Timed, in the same run, in turns (``--rounds``; the median and the fastest round printed;
the process's CPU time, as the machine is shared):

- (a) decode alone: ``wire.decoder.decode`` of each object, the raw baseline;
- (b) decode + the exec'd ``wire.make``;
- (c) decode + the loop;
- (c') decode + the loop, tuned: one converter closure per field chosen once, so that the
  loop does not test each field's kind for every object (one call per field instead).

Usage: .venv/bin/python bench/wire_finish.py [--objects 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from kabinet_integration.mapping import (
    DATE,
    DATETIME,
    EMPTY_GUID,
    GUID,
    SINKS,
    Fallback,
    Names,
    Wire,
    _day,
    asdict,
    plan,
)
from kabinet_integration.settings import Source
from kabinet_integration_testing import EMPTY, OneCData, generate, select_fields
from kabinet_shipments.sinks import entity_sinks

ORDERS = "Document_ЗаявкаНаПеревозку"
BROKEN: list[dict[str, Any]] = [
    {"Статус": "Потеряна"},  # an unknown status value
    {"Контрагент_Key": EMPTY},  # an empty reference where one is required
    {"Date": "0001-01-01T00:00:00"},  # an empty date where one is required
    {"ДатаПогрузки": "2025-13-01T00:00:00"},  # no such date
    {"ДатаПогрузки": "2025-02-01T00:00:00+03:00"},  # a zone: the general path decides
    {"Документы": [{"ВидДокумента": "ТТН", "ДатаДокумента": "никогда"}]},
]
FINE: list[dict[str, Any]] = [
    {"Договор_Key": "", "Документы": None, "ДатаДоставкиФакт": None},
    {"ДислокацияДата": "0001-01-01T00:00:00", "Дислокация": ""},
    {"ГрузМест": 12, "Стоимость": 1500, "ГрузВес": "1250.5"},
    {"Услуги": [], "Комментарий": "срочно"},
]


def looped(wire: Wire) -> Callable[[Any], Any]:
    """What ``mapping._compile`` generates, as a closure looping over ``wire.special``."""
    struct = wire.struct
    extras = wire.extras
    unset = msgspec.UNSET
    fields: list[tuple[str, str, Mapping[str, str] | None, bool, Any]] = []
    for name, kind, mapping, nullable, line in wire.special:
        row: Any = None
        if kind == "section":
            assert line is not None
            row = looped(line) if line.special or line.extras else _plain_line(line.struct)
        fields.append((name, kind, mapping, nullable, row))

    def make(obj: Any) -> Any:
        try:
            v = asdict(obj)
            for name in extras:
                del v[name]
            for name, kind, mapping, nullable, row in fields:
                x = v[name]
                if x is unset:
                    del v[name]
                    continue
                if row is not None:
                    v[name] = () if x is None else tuple([row(y) for y in x])
                    continue
                if kind == DATE:
                    x = _day(x, name)
                elif kind == DATETIME:
                    if x is not None:
                        if x.tzinfo is not None:
                            raise Fallback(name)
                        if x.year == 1 and x.month == 1 and x.day == 1:
                            x = None
                elif kind == GUID and (x == EMPTY_GUID or x == ""):
                    x = None
                if mapping is not None and x is not None:
                    if x not in mapping:
                        raise Fallback(name)
                    x = mapping[x]
                if x is None and not nullable:
                    raise Fallback(name)
                v[name] = x
            return struct(**v)
        except (TypeError, ValueError) as exc:  # the structs' own checks (__post_init__)
            raise Fallback(str(exc)) from None

    return make


def looped_calls(wire: Wire) -> Callable[[Any], Any]:
    """The same loop, tuned: one small converter per field, chosen once (no dispatch on
    the kind per object), sections' lines finished the same way."""
    struct = wire.struct
    extras = wire.extras
    unset = msgspec.UNSET
    fields = tuple(
        (name, _converter(name, kind, mapping, nullable, line))
        for name, kind, mapping, nullable, line in wire.special
    )

    def make(obj: Any) -> Any:
        try:
            v = asdict(obj)
            for name in extras:
                del v[name]
            for name, convert in fields:
                x = v[name]
                if x is unset:
                    del v[name]
                else:
                    v[name] = convert(x)
            return struct(**v)
        except (TypeError, ValueError) as exc:  # the structs' own checks (__post_init__)
            raise Fallback(str(exc)) from None

    return make


def _converter(
    name: str, kind: str, mapping: Mapping[str, str] | None, nullable: bool, line: Wire | None
) -> Callable[[Any], Any]:
    if kind == "section":
        assert line is not None
        row = looped_calls(line) if line.special or line.extras else _plain_line(line.struct)

        def section(x: Any) -> Any:
            return () if x is None else tuple([row(y) for y in x])

        return section
    if kind == DATE:

        def first(x: Any) -> Any:
            return _day(x, name)
    elif kind == DATETIME:

        def first(x: Any) -> Any:
            if x is not None:
                if x.tzinfo is not None:
                    raise Fallback(name)
                if x.year == 1 and x.month == 1 and x.day == 1:
                    return None
            return x
    elif kind == GUID:

        def first(x: Any) -> Any:
            return None if x == EMPTY_GUID or x == "" else x
    else:

        def first(x: Any) -> Any:
            return x

    def convert(x: Any) -> Any:
        x = first(x)
        if mapping is not None and x is not None:
            if x not in mapping:
                raise Fallback(name)
            x = mapping[x]
        if x is None and not nullable:
            raise Fallback(name)
        return x

    return convert


def _plain_line(struct: type[msgspec.Struct]) -> Callable[[Any], Any]:
    def line(y: Any) -> Any:
        return struct(**asdict(y))

    return line


def orders(count: int, broken_every: int) -> list[bytes]:
    """``count`` orders as 1C serves them (one JSON document each)."""
    data = OneCData()
    made = generate(data, counterparties=max(3, count // 50), orders=count, invoices=0, seed=7)
    out = []
    for n, ref in enumerate(made.orders):
        obj = dict(data.get(ORDERS, ref) or {})
        if broken_every and n % broken_every == broken_every // 2:
            obj.update(BROKEN[(n // broken_every) % len(BROKEN)])
        elif broken_every and n % broken_every == 0:
            obj.update(FINE[(n // broken_every) % len(FINE)])
        out.append(json.dumps(select_fields(obj, None), ensure_ascii=False).encode())
    return out


def order_wire() -> Wire:
    sink = {s.name: s for s in entity_sinks()}[SINKS["order"]]
    p = plan(Names.of(Source()), "order", sink)
    assert p.wire is not None, "the reference configuration has a fast path for orders"
    return p.wire


def outcome(make: Callable[[Any], Any], obj: Any) -> Any:
    try:
        return make(obj)
    except Fallback:
        return Fallback


def check(wire: Wire, loop: Callable[[Any], Any], raws: list[bytes]) -> tuple[int, int]:
    """Equal structs (or both a Fallback) for every object; (made, fell back)."""
    made = fell = 0
    for raw in raws:
        try:
            obj = wire.decoder.decode(raw)
        except msgspec.ValidationError:
            fell += 1
            continue
        a, b = outcome(wire.make, obj), outcome(loop, obj)
        assert a == b, (raw.decode(), a, b)
        if a is Fallback:
            fell += 1
        else:
            made += 1
            assert type(a) is wire.struct
    return made, fell


def run(
    raws: list[bytes], decode: Callable[[bytes], Any], make: Callable[[Any], Any] | None
) -> float:
    """CPU seconds of this process to decode (and finish) every object, one JSON document
    at a time as ``sync.decode_objects`` does (CPU time: on a shared machine the wall time
    also counts the turns other processes take)."""
    gc.collect()
    start = time.process_time()
    if make is None:
        for raw in raws:
            try:  # noqa: SIM105 - contextlib.suppress costs more than what is timed
                decode(raw)
            except msgspec.ValidationError:
                pass
    else:
        for raw in raws:
            try:  # noqa: SIM105
                make(decode(raw))
            except (msgspec.ValidationError, Fallback):
                pass
    return time.process_time() - start


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--broken-every", type=int, default=100)
    args = parser.parse_args()

    wire = order_wire()
    loop = looped(wire)
    raws = orders(args.objects, args.broken_every)
    tuned = looped_calls(wire)
    made, fell = check(wire, loop, raws)
    assert check(wire, tuned, raws) == (made, fell)
    size = sum(map(len, raws)) / len(raws)
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"msgspec {msgspec.__version__}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{len(raws)} orders (~{size:.0f} bytes of JSON each, {len(wire.special)} fields "
        f"finished in Python): {made} made, {fell} fall back; both finishers agree on every one"
    )
    decode = wire.decoder.decode
    times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    for _ in range(args.rounds):  # in turns: load from elsewhere falls on all three
        times["a"].append(run(raws, decode, None))
        times["b"].append(run(raws, decode, wire.make))
        times["c"].append(run(raws, decode, loop))
        times["d"].append(run(raws, decode, tuned))
    per = 1e6 / len(raws)
    lows = {k: min(v) * per for k, v in times.items()}
    a, b, c, d = (statistics.median(times[k]) for k in "abcd")
    print(f"CPU time, median of {args.rounds} rounds, µs per object (fastest round in brackets):")
    print(f"  (a) decode alone (raw baseline)   {a * per:7.2f} [{lows['a']:6.2f}]")
    print(
        f"  (b) decode + exec'd make          {b * per:7.2f} [{lows['b']:6.2f}]"
        f"   finish {(b - a) * per:6.2f}"
    )
    print(
        f"  (c) decode + loop closure         {c * per:7.2f} [{lows['c']:6.2f}]"
        f"   finish {(c - a) * per:6.2f}"
    )
    print(
        f"  (c') decode + loop of converters  {d * per:7.2f} [{lows['d']:6.2f}]"
        f"   finish {(d - a) * per:6.2f}"
    )
    for label, t in (("(c)", c), ("(c')", d)):
        print(
            f"{label}/(b) on decode+finish: {t / b:.3f} ({(t / b - 1) * 100:+.1f} %); "
            f"the finishing alone: {(t - a) / (b - a):.2f}x"
        )
    print(
        f"fastest rounds: (c)/(b) {lows['c'] / lows['b']:.3f}, (c')/(b) {lows['d'] / lows['b']:.3f}"
    )
    print(f"(b)/(a): {b / a:.2f}x (the exec'd finishing costs {(b - a) / a:.0%} of the decoding)")


if __name__ == "__main__":
    main()
