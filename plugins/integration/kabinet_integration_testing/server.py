"""The local 1C's HTTP server: OData reads and writes, the bound ``Balance`` function,
the exchange-plan HTTP service (``changes``/``ack``), HTTP Basic, Atom without
``$format=json``, and the faults a test injects (:class:`Fault`)."""

from __future__ import annotations

import base64
import bisect
import contextlib
import dataclasses
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

import msgspec

from kabinet_integration_testing.data import OneCData, put_raw
from kabinet_integration_testing.odata import (
    BALANCE,
    CHANGES,
    FILES,
    INVOICE_FILES,
    REQUESTS,
    ODataError,
    odata_error,
    parse_filter,
    parse_query,
    select_fields,
)


@dataclasses.dataclass
class Fault:
    """What the next matching request gets instead of an answer."""

    kind: str
    """``status`` (an ``odata.error`` with ``status``), ``page`` (a web server's HTML error
    page with ``status``, as a proxy in front of 1C answers), ``cut`` (the connection
    closes mid-body), ``slow`` (the answer waits ``delay`` seconds), ``hang`` (never
    answers until the server stops), ``lost`` (1C does what was asked, a ``POST``
    creates its document, and the connection closes before the answer: a lost answer)."""
    status: int = 500
    message: str = "Внутренняя ошибка сервера"
    """1C's message of a ``status`` fault (the text of a ``page``)."""
    match: str = ""
    """Only requests whose method, decoded path and query (``POST /trade/odata/…?…``)
    contain this."""
    delay: float = 0.0
    times: int = 1
    after: int = 0
    """Let this many matching requests through first."""


class OneCServer:
    """The HTTP server on a free 127.0.0.1 port; ``base_url`` is the publication root."""

    def __init__(
        self,
        data: OneCData | None = None,
        *,
        username: str = "portal",
        password: str = "пароль",  # noqa: S107 - a local test server
        publication: str = "trade",
    ) -> None:
        self.data = data or OneCData()
        self.username, self.password = username, password
        self.publication = publication
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        """(method, decoded path and query) of every request, in order."""
        self.arrivals: list[tuple[float, str]] = []
        """(monotonic time, raw path and query) of every request as it arrived."""
        self.active = 0
        """Requests being answered now; ``peak``: the most at once so far."""
        self.peak = 0
        self.counting = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{self.publication}"

    def start(self) -> OneCServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> OneCServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fault(self, kind: str, **kwargs: Any) -> None:
        self.faults.append(Fault(kind, **kwargs))

    def accept(self, portal_id: str = "", answer: str = "") -> int:
        """The operator accepts the new client requests (``portal_id``: only that one);
        what cannot be applied is rejected with the reason (:meth:`OneCData.answer_requests`)."""
        return self.data.answer_requests(accept=True, answer=answer, portal_id=portal_id)

    def reject(self, portal_id: str = "", answer: str = "") -> int:
        """The operator rejects the new client requests (``portal_id``: only that one)."""
        return self.data.answer_requests(accept=False, answer=answer, portal_id=portal_id)

    @contextlib.contextmanager
    def counted(self, target: str) -> Iterator[None]:
        """Count one request while it is answered (arrival time, concurrency)."""
        with self.counting:
            self.arrivals.append((time.monotonic(), unquote(target)))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self.counting:
                self.active -= 1

    def busiest_second(self, match: str = "") -> int:
        """The most requests (whose path and query contain ``match``) that arrived within
        any one second."""
        times = [t for t, target in self.arrivals if match in target]
        most, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def _take_fault(self, target: str) -> Fault | None:
        for fault in self.faults:
            if fault.match in target:
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            lose = False
            """This request's answer is lost (a ``lost`` fault)."""

            def log_message(self, *args: Any) -> None:
                pass

            def handle(self) -> None:
                # The client may go away (a test killed it, or cut it off).
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_GET(self) -> None:
                with server.counted(self.path):
                    self._serve("GET")

            def do_POST(self) -> None:
                with server.counted(self.path):
                    self._serve("POST")

            def _send(
                self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] = {}
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("DataServiceVersion", "3.0")
                for k, v in headers.items():
                    self.send_header(k, quote(v, safe=":/?&=()',$"))
                self.end_headers()
                if self.lose:  # the work is done, its answer never arrives
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _json(self, status: int, data: Any, headers: Mapping[str, str] = {}) -> None:
                # UTF-8 as 1C sends it; msgspec, so that the benches measure the portal.
                body = msgspec.json.encode(data)
                self._send(status, body, "application/json;charset=utf-8", headers)

            def _serve(self, method: str) -> None:
                raw_path, _, raw_query = self.path.partition("?")
                path = unquote(raw_path)
                target = f"{path}?{unquote(raw_query)}"
                server.requests.append((method, target))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = server._take_fault(f"{method} {target}")
                self.lose = fault is not None and fault.kind == "lost"
                if fault is not None:
                    if fault.kind == "status":
                        return self._json(fault.status, odata_error("-1", fault.message))
                    if fault.kind == "page":
                        return self._send(
                            fault.status, _page(fault.status, fault.message), "text/html"
                        )
                    if fault.kind == "cut":
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json;charset=utf-8")
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        self.wfile.write(b'{"odata.metadata":"x","value":[{"Ref_Key":')
                        self.wfile.flush()
                        self.close_connection = True
                        return None
                    if fault.kind in ("slow", "hang"):
                        server.stopping.wait(fault.delay if fault.kind == "slow" else 3600)
                        if server.stopping.is_set():
                            self.close_connection = True  # its client is long gone
                            return None
                if not self._authorized():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="1C"')
                    page = b"<html><body>401 Unauthorized</body></html>"
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return None
                query = parse_query(raw_query)
                try:
                    with server.data.lock:
                        self._route(method, path, query, body)
                except ODataError as exc:
                    self._json(exc.status, odata_error(exc.code, exc.message))
                return None

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return False
                return (user, password) == (server.username, server.password)

            def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
                prefix = f"/{server.publication}/"
                if not path.startswith(prefix):
                    raise ODataError(404, "9", f"Не найдена публикация {path}")
                rest = path[len(prefix) :]
                if rest.startswith("hs/kabinet/v1/"):
                    return self._service(method, rest[len("hs/kabinet/v1/") :], query, body)
                if not rest.startswith("odata/standard.odata/"):
                    raise ODataError(404, "9", f"Не найден ресурс {rest}")
                rest = rest[len("odata/standard.odata/") :]
                if query.get("$format") != "json":
                    atom = b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>'
                    return self._send(200, atom, "application/atom+xml;type=feed;charset=utf-8")
                if method == "POST":
                    return self._create(rest, body)
                return self._read(rest, query)

            def _root(self) -> str:
                return (
                    f"http://{self.headers.get('Host')}/{server.publication}/odata/standard.odata/"
                )

            def _read(self, rest: str, query: dict[str, str]) -> None:
                data = server.data
                balance = re.fullmatch(r"(\w+)/Balance\((.*)\)", rest)
                if balance and data.renaming.set(BALANCE) != balance[1]:
                    return self._register(balance[1], balance[2])
                if balance:
                    condition = re.fullmatch(r"Condition='(.*)'", balance[2])
                    r = data.renaming
                    where = condition[1].replace("''", "'") if condition else ""
                    key = r.fields.get("Договор_Key", "Договор_Key")
                    wanted = re.findall(rf"{key} eq guid'([0-9a-fA-F-]+)'", where)
                    if wanted and re.fullmatch(
                        rf"{key} eq guid'[0-9a-fA-F-]+'(?: or {key} eq guid'[0-9a-fA-F-]+')*",
                        where,
                    ):  # the connector's question, answered without a scan
                        owed = {c: data.balances[c] for c in wanted if c in data.balances}
                        where = ""
                    else:
                        owed = data.balances
                    rows = [
                        r.obj({"Договор_Key": c, "СуммаBalance": v})
                        for c, v in sorted(owed.items())
                    ]
                    if where:
                        pred = parse_filter(where)
                        rows = [row for row in rows if pred(row)]
                    return self._json(
                        200,
                        {
                            "odata.metadata": f"{self._root()}$metadata#{balance[1]}_Balance",
                            "value": rows,
                        },
                    )
                single = re.fullmatch(r"(\w+)\(guid'([0-9a-fA-F-]+)'\)", rest)
                if single:
                    found = data.sets.get(single[1], {}).get(single[2])
                    if single[1] not in data.sets:
                        raise ODataError(400, "6", f"Неизвестный сегмент {single[1]}")
                    if found is None:
                        raise ODataError(404, "9", f"Объект не найден: {single[2]}")
                    out = select_fields(found, query.get("$select"), keep_storage=True)
                    out["odata.metadata"] = f"{self._root()}$metadata#{single[1]}/@Element"
                    return self._json(200, out)
                name = rest
                if name != data.renaming.set(CHANGES) and name not in data.sets:
                    raise ODataError(400, "6", f"Неизвестный сегмент пути {name}")
                quick = _quick(data, name, query)
                if quick is not None:
                    select = query.get("$select")
                    if select or name in (
                        data.renaming.set(FILES),
                        data.renaming.set(INVOICE_FILES),
                    ):
                        rows = [select_fields(row, select) for row in quick]
                    else:  # serialized at once, under the lock: no copy needed
                        rows = quick
                    return self._json(
                        200, {"odata.metadata": f"{self._root()}$metadata#{name}", "value": rows}
                    )
                if name == data.renaming.set(CHANGES):
                    rows = list(data.register)
                else:
                    rows = list(data.sets[name].values())
                if "$filter" in query:
                    pred = parse_filter(query["$filter"])
                    rows = [row for row in rows if pred(row)]
                if "$orderby" in query:
                    for key in reversed(query["$orderby"].split(",")):
                        field, _, direction = key.strip().partition(" ")
                        rows.sort(
                            key=lambda row: str(row.get(field, "")), reverse=direction == "desc"
                        )
                skip = int(query.get("$skip", 0))
                top = int(query["$top"]) if "$top" in query else None
                rows = rows[skip : None if top is None else skip + top]
                rows = [select_fields(row, query.get("$select")) for row in rows]
                self._json(
                    200, {"odata.metadata": f"{self._root()}$metadata#{name}", "value": rows}
                )
                return None

            def _register(self, name: str, args: str) -> None:
                """The Balance of another register (``OneCData.registers``): its rows, by
                the condition's filter."""
                data = server.data
                by_name = {data.renaming.set(n): rows for n, rows in data.registers.items()}
                if name not in by_name:
                    raise ODataError(400, "6", f"Неизвестный сегмент {name}")
                condition = re.fullmatch(r"Condition='(.*)'", args)
                rows = [data.renaming.obj(dict(row)) for row in by_name[name]]
                if condition and condition[1]:
                    pred = parse_filter(condition[1].replace("''", "'"))
                    rows = [row for row in rows if pred(row)]
                meta = f"{self._root()}$metadata#{name}_Balance"
                return self._json(200, {"odata.metadata": meta, "value": rows})

            def _create(self, name: str, body: bytes) -> None:
                data = server.data
                if name not in data.sets and name != data.renaming.set(REQUESTS):
                    raise ODataError(400, "6", f"Неизвестный сегмент пути {name}")
                try:
                    obj = json.loads(body)
                except ValueError:
                    raise ODataError(500, "-1", "Ошибка разбора JSON") from None
                obj.pop("Ref_Key", None)
                obj["Ref_Key"] = str(uuid.uuid4())
                data.numbers += 1
                obj.setdefault("Number", f"ЗК-{data.numbers:06d}")
                obj.setdefault("Ответ", "")
                stored = put_raw(data, name, obj)
                if name == data.renaming.set(REQUESTS) and data.auto_answer:
                    # The operator answers at once (``OneCData.auto_answer``).
                    data.answer_requests(accept=data.auto_answer == "accept")
                    stored = data.sets[name][obj["Ref_Key"]]
                out = dict(stored)
                out["odata.metadata"] = f"{self._root()}$metadata#{name}/@Element"
                self._json(201, out, {"Location": f"{self._root()}{name}(guid'{obj['Ref_Key']}')"})

            def _service(self, method: str, rest: str, query: dict[str, str], body: bytes) -> None:
                data = server.data
                if method == "GET" and rest == "changes":
                    limit = int(query.get("limit", 100))
                    page = list(itertools.islice(data.pending.values(), limit))
                    changes = []
                    for _seq, name, ref, deleted in page:
                        obj = data.sets.get(name, {}).get(ref)
                        changes.append(
                            {
                                "type": name,
                                "ref": ref,
                                "deleted": deleted or obj is None,
                                "object": None if obj is None else select_fields(obj, None),
                            }
                        )
                    message_no = page[-1][0] if page else data.seq
                    return self._json(
                        200,
                        {
                            "message_no": message_no,
                            "more": len(data.pending) > limit,
                            "changes": changes,
                        },
                    )
                if method == "POST" and rest == "changes/ack":
                    try:
                        number = int(json.loads(body)["message_no"])
                    except (ValueError, KeyError, TypeError):
                        raise ODataError(400, "-1", "Нет номера сообщения") from None
                    data.acknowledge(number)
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                raise ODataError(404, "9", f"Нет метода {method} {rest}")

        return Handler


BY_REFS = re.compile(r"(?:Ref_Key eq guid'[0-9a-fA-F-]+'(?: or |$))+")
REF = re.compile(r"guid'([0-9a-fA-F-]+)'")
BY_FIELD = re.compile(r"(\w+) eq guid'([0-9a-fA-F-]+)'")
"""One condition of a list of a field's values (an attached-files listing by owner)."""
AFTER_REF = re.compile(r"Ref_Key gt guid'([0-9a-fA-F-]+)'")


def _quick(data: OneCData, name: str, query: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """The answer to the connector's frequent queries without scanning every row (objects
    by ``Ref_Key``, keyset pages over ``Ref_Key`` and over the change register), so the
    benches measure the portal, not this server; anything else: None (the general path)."""
    where = query.get("$filter", "")
    if "$orderby" not in query and "$skip" not in query and BY_REFS.fullmatch(where):
        objects = data.sets.get(name, {})
        return [objects[r] for r in dict.fromkeys(REF.findall(where)) if r in objects]
    if "$orderby" not in query and "$skip" not in query and "$top" not in query and where:
        listed = _by_field(data, name, where)
        if listed is not None:
            return listed
    top = int(query["$top"]) if "$top" in query else None
    if top is None or "$skip" in query:
        return None
    order = query.get("$orderby", "")
    if order == "Ref_Key" and name in data.sets:
        rows = data.ordered(name, lambda r: str(r.get("Ref_Key", "")))
        after = AFTER_REF.fullmatch(where)
        if where and after is None:
            return None
        start = bisect.bisect_right(rows, after[1], key=lambda x: x[0]) if after else 0
        return [row for _k, row in rows[start : start + top]]
    r = data.renaming
    at, obj = r.fields.get("ДатаИзменения", "ДатаИзменения"), r.fields.get("Объект", "Объект")
    if name != r.set(CHANGES) or order not in (f"{at},{obj}", f"{at} desc,{obj} desc"):
        return None
    rows = data.ordered(CHANGES, lambda row: (str(row[at])[:19], str(row[obj])))
    if order == f"{at} desc,{obj} desc" and not where:  # where the register stands
        return [row for _k, row in rows[len(rows) - top :][::-1]] if top > 0 else []
    pair = (
        rf"{at} gt datetime'(?P<t>[^']+)' or "
        rf"\({at} eq datetime'(?P=t)' and {obj} gt '(?P<o>[^']+)'\)"
    )
    # The keyset, alone or led by its own time as a lower bound.
    keyset = re.fullmatch(pair, where) or re.fullmatch(
        rf"{at} ge datetime'(?P<low>[^']+)' and \({pair}\)", where
    )
    if keyset and keyset.groupdict().get("low", keyset["t"]) != keyset["t"]:
        keyset = None  # another lower bound: the general path
    since = re.fullmatch(rf"{at} ge datetime'([^']+)'", where)
    if keyset:
        start = bisect.bisect_right(rows, (keyset["t"][:19], keyset["o"]), key=lambda x: x[0])
    elif since:
        start = bisect.bisect_left(rows, (since[1][:19], ""), key=lambda x: x[0])
    elif not where:
        start = 0
    else:
        return None
    return [row for _k, row in rows[start : start + top]]


def _by_field(data: OneCData, name: str, where: str) -> list[dict[str, Any]] | None:
    """``F eq guid'…' or F eq guid'…' …`` on one field other than ``Ref_Key`` (files by
    their owners), from an index of the set by that field, in the set's order."""
    pairs = BY_FIELD.findall(where)
    fields = {f for f, _ in pairs}
    if len(fields) != 1 or "Ref_Key" in fields or name not in data.sets:
        return None
    if " or ".join(f"{f} eq guid'{v}'" for f, v in pairs) != where:
        return None
    (field,) = fields
    wanted = {v for _f, v in pairs}
    index = data.grouped(name, field)
    found = [(n, row) for v in wanted for n, row in index.get(v, ())]
    return [row for _n, row in sorted(found, key=lambda x: x[0]) if row.get(field) in wanted]


def _page(status: int, message: str) -> bytes:
    """An error page as a web server in front of 1C (Apache, IIS) sends it."""
    styles = "body{font-family:Verdana,Arial,sans-serif;color:#333} " * 40
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>'
        f"<title>{status} Service Unavailable</title><style>{styles}</style></head>"
        f"<body><h1>Service Unavailable</h1>\n<p>{message}</p>\n<hr>\n"
        "<address>Apache/2.4.57 (Debian) Server at 1c.local Port 80</address>\n"
        + "<!-- padding -->\n" * 200
        + "</body></html>\n"
    ).encode()


def serve(data: OneCData | None = None, **kwargs: Any) -> Iterator[OneCServer]:
    """For a fixture: a running server, stopped afterwards."""
    server = OneCServer(data, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """For scripts (not tests): poll until ``predicate`` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
