"""The one logger: structlog, JSON lines in production and readable lines in development.

Every line written while a request is handled carries its ``request_id`` (bound in a
context variable by the web app), including lines from the standard library's loggers
(uvicorn, SQLAlchemy, dramatiq), which are routed through the same processors.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import Processor

from kabinet.settings import HostSettings

_json = msgspec.json.Encoder(enc_hook=str)


def _dumps(event: Any, **_: Any) -> str:
    return _json.encode(event).decode()


def _processors(fmt: str) -> tuple[list[Processor], Processor]:
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        shared.append(structlog.processors.dict_tracebacks)
        renderer: Processor = structlog.processors.JSONRenderer(serializer=_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    return shared, renderer


def configure(settings: HostSettings, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's logging for this process.

    ``stream`` defaults to standard output; tests pass a buffer to read the lines back.
    """
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


def get_logger(name: str = "kabinet", **bound: Any) -> Any:
    """A logger bound now to the current configuration (cheap to call afterwards)."""
    return structlog.get_logger(name).bind(logger=name, **bound)
