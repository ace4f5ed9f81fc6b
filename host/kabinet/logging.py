"""The one logger: structlog, JSON lines in production and readable lines in development.

Every line written while a request is handled carries its ``request_id`` (bound in a
context variable by the web app), including lines from the standard library's loggers
(uvicorn, SQLAlchemy, dramatiq), which are routed through the same processors.

No line carries a secret (issue 14): tracebacks are rendered without the frames' local
variables (which hold the ASGI scope with its cookies and ``Authorization`` header, parsed
forms with passwords and codes), and :func:`redact`, the last processor before the
renderer, masks what remains, in the structured values and in the rendered text alike:

- values under names that say "secret" (``password``, ``token``, ``code``, ``cookie``,
  ``authorization``, ``csrf``, ``session``, ``secret``, ``body``, …), at any depth;
- in any text: ``Authorization``/``Cookie``/CSRF headers, ``Bearer …``, API tokens
  (``kbt_…``), ``name=value`` and ``"name": "value"`` pairs with such names, passwords in
  URLs, CSRF tokens and the long random strings session ids and links are made of;
- the values registered with :func:`add_secret` (the signing key, and every settings
  value whose name says secret, registered by :func:`configure`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from kabinet.settings import HostSettings

if TYPE_CHECKING:
    from kabinet.host import Host

_json = msgspec.json.Encoder(enc_hook=str)

MASK = "[redacted]"

_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "cookie",
    "authorization",
    "csrf",
    "session",
    "apikey",
    "api_key",
    "credential",
    "private_key",
    "bearer",
)
_SECRET_NAMES = frozenset(
    {"code", "otp", "pin", "sid", "signature", "sig", "body", "raw_body", "form", "form_data"}
)
_SECRET_SUFFIXES = ("_code", "_otp", "_pin", "session_id", "session_key")
_NOT_SECRET = frozenset({"status_code", "exit_code", "error_code"})
_NOT_SECRET_SUFFIXES = ("_id", "_ids", "_count", "_at", "_name", "_ttl", "_seconds", "_kind")


def secret_name(name: str) -> bool:
    """Whether a value called ``name`` (a key, a header, a form field) is a secret."""
    key = name.strip().lower().replace("-", "_")
    if key in _NOT_SECRET:
        return False
    if key in _SECRET_NAMES or key.endswith(_SECRET_SUFFIXES):
        return True
    if key.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return any(word in key for word in _SECRET_WORDS)


_registered: set[str] = set()
_known: re.Pattern[str] | None = None


def add_secret(value: str | bytes | None) -> None:
    """Mask ``value`` wherever it appears in a log line (8 characters or more)."""
    global _known
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value or len(value) < 8 or value in _registered:
        return
    _registered.add(value)
    alternatives = sorted(_registered, key=len, reverse=True)
    _known = re.compile("|".join(re.escape(v) for v in alternatives))


def settings_secrets(sections: Mapping[str, Any]) -> list[str]:
    """Every string in the settings whose name says it is a secret (at any depth)."""
    found: list[str] = []

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, str(key))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, name)
        elif isinstance(value, str) and secret_name(name):
            found.append(value)

    walk(sections, "")
    return found


_NAMES = r"[\w.\-]*(?:" + "|".join(_SECRET_WORDS) + r"|code|otp|pin|session|sid|sig)[\w.\-]*"
_TEXT_RULES: list[tuple[re.Pattern[str], Any]] = [
    # Header lines and header pairs as Python shows them: (b'cookie', b'…'), 'cookie': '…'
    (
        re.compile(
            r"(?i)(\b(?:proxy-)?authorization|\bset-cookie|\bcookie|\bx-csrf-token)"
            r"((?:['\"]\s*,\s*b?['\"]|['\"]?\s*[:=]\s*b?['\"]?))[^'\"\r\n]*"
        ),
        lambda m: f"{m[1]}{m[2]}{MASK}",
    ),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{6,}"), f"Bearer {MASK}"),
    (re.compile(r"\bkbt_[A-Za-z0-9_\-]{4,}"), f"kbt_{MASK}"),
    # name=value (queries, form bodies, key=value lines) and "name": "value" (JSON, reprs)
    (  # quoted, within a quoted text (a repr of a repr): password=\'…\'
        re.compile(rf"(?i)\b({_NAMES})(\s*[=:]\s*)(\\['\"])(.*?)\3"),
        lambda m: f"{m[1]}{m[2]}{m[3]}{MASK}{m[3]}" if secret_name(m[1]) else m[0],
    ),
    (
        re.compile(rf"(?i)\b({_NAMES})(\s*[=:]\s*)(['\"])(.*?)(?<!\\)\3"),
        lambda m: f"{m[1]}{m[2]}{m[3]}{MASK}{m[3]}" if secret_name(m[1]) else m[0],
    ),
    (
        re.compile(rf"(?i)\b({_NAMES})=([^&\s'\",;)\\]+)"),
        lambda m: f"{m[1]}={MASK}" if secret_name(m[1]) else m[0],
    ),
    (
        re.compile(rf"(?i)(['\"])({_NAMES})\1(\s*[:=,]\s*b?)(['\"])(.*?)(?<!\\)\4"),
        lambda m: f"{m[1]}{m[2]}{m[1]}{m[3]}{m[4]}{MASK}{m[4]}" if secret_name(m[2]) else m[0],
    ),
    # a password in a URL: scheme://user:password@host
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@]*):[^@\s/]+@"), rf"\1:{MASK}@"),
    # a CSRF token: nonce.signature
    (re.compile(r"[A-Za-z0-9_\-]{12,}\.[0-9a-f]{32}\b"), MASK),
]
_RANDOM = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{32,}(?![A-Za-z0-9_\-])")


def _random_looking(match: re.Match[str]) -> str:
    """Session ids, link tokens and keys (``secrets.token_urlsafe``) mix upper and lower
    case letters and digits; hex digests, request ids and identifiers do not."""
    text = match[0]
    has = (re.search(r"[a-z]", text), re.search(r"[A-Z]", text), re.search(r"[0-9]", text))
    return MASK if all(has) else text


def redact_text(text: str) -> str:
    """``text`` with every secret it shows masked."""
    if _known is not None:
        text = _known.sub(MASK, text)
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return _RANDOM.sub(_random_looking, text)


def _name(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def _redact(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > 20:
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: _redact_named(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        name = _name(value[0]) if len(value) == 2 else None
        if name is not None and secret_name(name):  # a header pair: (name, value)
            return (name, MASK)
        items = [_redact(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return redact_text(str(value))


def _redact_named(name: str, value: Any, depth: int) -> Any:
    if secret_name(name) and value not in (None, ""):
        return MASK
    return _redact(value, depth)


_KEEP = frozenset({"timestamp", "level", "logger", "request_id", "_record", "_from_structlog"})


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The processor: every value of the line, the event and the traceback included."""
    for key, value in list(event_dict.items()):
        if key in _KEEP:
            continue
        if key in ("event", "exception"):
            event_dict[key] = _redact(value)
        else:
            event_dict[key] = _redact_named(key, value, 0)
    return event_dict


def _dumps(event: Any, **_: Any) -> str:
    return _json.encode(event).decode()


def _processors(fmt: str) -> tuple[list[Processor], Processor]:
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        # Frames without their local variables: those hold the request's cookies and
        # headers, parsed forms and bodies.
        shared.append(
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        )
        renderer: Processor = structlog.processors.JSONRenderer(serializer=_dumps)
    else:
        # A plain traceback, rendered to text here so that :func:`redact` sees it (the
        # console renderer's default, Rich, shows every frame's locals).
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    shared.append(redact)
    return shared, renderer


def configure(
    settings: HostSettings, stream: TextIO | None = None, *, secrets: Iterable[str] = ()
) -> None:
    """Configure structlog and the standard library's logging for this process.

    ``stream`` defaults to standard output; tests pass a buffer to read the lines back.
    ``secrets`` are values to mask wherever they appear (the host passes its settings'
    secrets); ``[host] secret_key`` is always one.
    """
    for value in (
        settings.secret_key,
        *settings.previous_secret_keys,
        settings.s3_secret_key,
        *secrets,
    ):
        add_secret(value)
    fmt = settings.log_format
    if fmt not in {"json", "console"}:
        fmt = "console"
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        level = logging.INFO
    out = stream or sys.stdout
    shared, renderer = _processors(fmt)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_kabinet", False)]:
        root.removeHandler(old)
    handler._kabinet = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own access log would duplicate the web app's one line per request.
    logging.getLogger("uvicorn.access").disabled = True


def configure_host(host: Host, stream: TextIO | None = None) -> None:
    """:func:`configure` for a process of ``host`` (web, worker, scheduler), masking every
    settings value whose name says it is a secret (plugins' sections included)."""
    configure(host.settings.host, stream, secrets=settings_secrets(host.settings.raw.sections))


def get_logger(name: str = "kabinet", **bound: Any) -> Any:
    """A logger bound now to the current configuration (cheap to call afterwards)."""
    return structlog.get_logger(name).bind(logger=name, **bound)
