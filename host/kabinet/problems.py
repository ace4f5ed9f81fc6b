"""The one error shape: RFC 9457 problem details for the API, a friendly page for people.

Every exception reaching Litestar ends here. Requests under ``/api/`` get
``application/problem+json`` (``type``, ``title``, ``status``, ``detail``, ``instance``, and
``errors: [{field, message}]`` for invalid input); pages get the shell's error page in the
person's language. An unexpected exception is logged with the request id and answered
with a 500 that names nothing but that id.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import msgspec
import sqlalchemy.exc
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    SerializationException,
    ValidationException,
)
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ExceptionHandlersMap

from kabinet import i18n
from kabinet.forms import FieldError
from kabinet.logging import get_logger

PROBLEM_JSON = "application/problem+json"
VALIDATION_TYPE = "urn:kabinet:problem:validation"
LOGIN_PATH = "/login"

_MISSING_FIELD = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_KEY = re.compile(
    r"Key \((?P<field>[^)]+)\)=\((?P<value>.*?)\) (?P<what>is not present|already exists)"
)
_UNIQUE_SQLITE = re.compile(r"UNIQUE constraint failed: (?P<field>[\w.]+)")

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Access denied",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid data",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
"""Short titles (English message ids; pages show them translated)."""

PAGE_MESSAGES = {
    400: "The request could not be understood. Go back and check what you entered.",
    401: "Sign in to see this page.",
    403: "You do not have access to this page. Ask your administrator if you need it.",
    404: "There is no such page. Check the address or start from the home page.",
    405: "This page cannot be used this way.",
    500: "An error happened on our side. We have recorded it; please try again later.",
    503: "The portal is temporarily unavailable. Please try again in a few minutes.",
}


class Problem(msgspec.Struct, omit_defaults=True):
    """RFC 9457 problem details, with ``errors`` for invalid fields."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
    request_id: str | None = None


def is_api(request: Request[Any, Any, Any]) -> bool:
    path: str = request.scope["path"]
    return path == "/api" or path.startswith("/api/")


def request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


def field_errors(exc: HTTPException) -> list[dict[str, str]]:
    """Each invalid field by name with what was expected."""
    if isinstance(exc.__cause__, SerializationException):
        return [{"field": "body", "message": f"not valid JSON: {exc.detail}"}]
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        key = str(item.get("key") or item.get("source") or "body")
        field = "" if key == "data" else key
        for pattern in (_MISSING_FIELD, _UNKNOWN_FIELD):
            found = pattern.search(message)
            if found:
                at = _AT.search(message)
                prefix = at["path"].lstrip(".") if at else field
                field = f"{prefix}.{found['field']}" if prefix else found["field"]
                message = _AT.sub("", message)
        errors.append({"field": field or "body", "message": _AT.sub("", message)})
    return errors


def problem(
    request: Request[Any, Any, Any],
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    body = Problem(
        type=type_,
        title=title or TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.scope["path"],
        errors=errors,
        request_id=request_id(request),
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _error_page(
    request: Request[Any, Any, Any],
    status: int,
    detail: str | None,
    refusal: FieldError | None = None,
    *,
    database_ok: bool = True,
) -> Response[Any]:
    """The shell's error page. A 4xx is drawn in the person's shell (their header) as it
    is sent (:class:`kabinet.pages.ErrorPage`); a 5xx, or a refusal the database made (its
    transaction is spoiled), only as the page can be drawn without the database."""
    from kabinet.pages import STATE_KEY, ErrorPage

    shell = request.app.state.get(STATE_KEY)
    if shell is None:
        return problem(request, status, detail=detail)
    lang = shell.language(request)
    title = i18n.gettext_(lang, "Page not found" if status == 404 else TITLES.get(status, "Error"))
    message = i18n.gettext_(lang, PAGE_MESSAGES.get(status, PAGE_MESSAGES[400]))
    if refusal is not None:  # a refusal the page did not show beside its field: say it
        message = " ".join(e.text(lang) for e in refusal.errors)
    context = {
        "status": status,
        "title": title,
        "message": message,
        "request_id": request_id(request),
    }
    if status < 500 and database_ok:
        return ErrorPage(shell, request, "shell/error.html", context, status)
    try:
        return shell.render_sync(request, "shell/error.html", context, status)  # type: ignore[no-any-return]
    except Exception:  # the error page itself failed: still answer, plainly
        get_logger("kabinet.web").exception("error page failed")
        return Response(f"{status} {title}", status_code=status, media_type="text/plain")


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's HTTP exceptions: 4xx problems or pages, 401 on a page goes to sign in."""
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status >= 500:
        return handle_unexpected(request, exc)
    if not is_api(request):
        if isinstance(exc, NotAuthorizedException):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return Response(
                "",
                status_code=HTTP_303_SEE_OTHER,
                headers={"Location": f"{LOGIN_PATH}?next={quote(target, safe='')}"},
            )
        response = _error_page(request, status, exc.detail)
        response.headers.update(headers)
        return response
    if isinstance(exc, ValidationException) or (isinstance(exc, ClientException) and status == 400):
        # A body that could not be read at all (the wrong media type, a broken form) is
        # the body's fault: still named.
        errors = field_errors(exc) or [{"field": "body", "message": exc.detail or "not valid"}]
        errors = [{**e, "field": _sent_name(request, e["field"])} for e in errors]
        if errors:
            names = ", ".join(e["field"] for e in errors)
            return problem(
                request,
                400,
                title="Invalid request data",
                detail=f"Check these fields: {names}.",
                type_=VALIDATION_TYPE,
                errors=errors,
                headers=headers,
            )
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
    detail = exc.detail if exc.detail and exc.detail.lower() != phrase.lower() else None
    return problem(request, status, detail=detail, headers=headers)


def _sent_name(request: Request[Any, Any, Any], field: str) -> str:
    """The name the client sent for a handler's parameter: ``page`` for ``page_no: PageNo``
    (a parameter declared with ``QueryParameter(name=...)``, as the page kit's are)."""
    try:
        declared = request.route_handler.parsed_fn_signature.parameters.get(field)
    except (AttributeError, KeyError):
        return field
    kwarg = getattr(declared, "kwarg_definition", None)
    alias = getattr(kwarg, "name", None) or getattr(kwarg, "query", None)
    return alias if isinstance(alias, str) and alias else field


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Log the fault with its request id; answer 500 naming only that id."""
    get_logger("kabinet.web").error(
        "unhandled error",
        method=request.scope.get("method"),
        path=request.scope["path"],
        exc_info=exc,
    )
    if is_api(request):
        rid = request_id(request)
        return problem(
            request,
            500,
            detail=f"Please try again later. Request id: {rid}." if rid else None,
        )
    return _error_page(request, 500, None)


def _driver_error(exc: sqlalchemy.exc.DBAPIError) -> tuple[str, str]:
    """The SQLSTATE and the text (with PostgreSQL's DETAIL) of a database refusal."""
    orig: Any = exc.orig
    cause: Any = getattr(orig, "__cause__", None)
    state = str(getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None) or "")
    detail = str(getattr(cause, "detail", None) or "")
    return state, f"{orig} {detail}"


def refusal(exc: sqlalchemy.exc.DBAPIError) -> tuple[int, str, str] | None:
    """Status, field and message for a write the database refused because of the data, or
    ``None`` for a fault of ours. A reference to a row that does not exist is a 422, a
    value already taken a 409 (the field named when the database names it: PostgreSQL's
    ``Key (field)=(value)``, SQLite's ``UNIQUE … table.field``), a value the column cannot
    hold (too long, out of range) a 400."""
    state, text = _driver_error(exc)
    found = _KEY.search(text)
    field = found["field"].split(",")[0].strip() if found else "body"
    if state == "23503" or "FOREIGN KEY" in text.upper():
        value = f" {found['value']}" if found else ""
        return 422, field, f"there is no such object{value}"
    if state == "23505" or "UNIQUE constraint" in text:
        unique = _UNIQUE_SQLITE.search(text)
        if unique:
            field = unique["field"].rsplit(".", 1)[-1]
        return 409, field, "this value is already taken"
    if state.startswith("22") or isinstance(exc, sqlalchemy.exc.DataError):
        return 400, "body", "a value is too long or out of range"
    return None


def handle_database(
    request: Request[Any, Any, Any], exc: sqlalchemy.exc.DBAPIError
) -> Response[Any]:
    """The net under the services' own checks: a write the database refused because of the
    data is a 4xx naming the field, never a 500 (anything else still is)."""
    found = refusal(exc)
    if found is None:
        return handle_unexpected(request, exc)
    status, field, message = found
    get_logger("kabinet.web").warning(
        "refused by the database", path=request.scope["path"], status=status, field=field
    )
    if not is_api(request):
        return _error_page(request, 400, None, database_ok=False)
    return problem(
        request,
        status,
        title="Invalid request data",
        detail=f"Check these fields: {field}.",
        type_=VALIDATION_TYPE,
        errors=[{"field": field, "message": message}],
    )


def handle_field_error(request: Request[Any, Any, Any], exc: FieldError) -> Response[Any]:
    """A refusal naming its field (:class:`kabinet.forms.FieldError`, an app's own
    subclass) that reached the answer: on the API problem details with ``errors`` naming
    each field (400/422: the validation type, like a body Litestar refused); on a page
    that did not show it beside the field, the error page saying it."""
    status = exc.status if 400 <= exc.status < 500 else 400
    if not is_api(request):
        return _error_page(request, status, None, exc)
    errors = [{"field": e.field or "body", "message": e.english()} for e in exc.errors]
    if status in (400, 422):
        names = ", ".join(dict.fromkeys(e["field"] for e in errors))
        return problem(
            request,
            status,
            title="Invalid request data",
            detail=f"Check these fields: {names}.",
            type_=VALIDATION_TYPE,
            errors=errors,
        )
    named = [e for e in errors if e["field"] != "body"]
    return problem(request, status, detail=exc.english(), errors=named or None)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: handle_http,
    FieldError: handle_field_error,
    sqlalchemy.exc.DBAPIError: handle_database,
    Exception: handle_unexpected,
}
