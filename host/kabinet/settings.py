"""The one settings loader: ``settings.toml`` plus ``KABINET__SECTION__KEY`` overrides.

The file has a ``[host]`` section and one section per plugin. Each section is validated
by a ``msgspec.Struct`` (the host's below, a plugin's from its manifest), so a wrong
value stops start-up with the file, the key path, the expected type and the value
received, and an unknown key suggests the closest known one. Nothing is read from the
environment at import time: :func:`load_raw` takes the environment it is given.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from kabinet.errors import SettingsError

ENV_PREFIX = "KABINET__"
SETTINGS_ENV = "KABINET_SETTINGS"
DEFAULT_FILE = "settings.toml"

S = TypeVar("S", bound=msgspec.Struct)
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


LOCAL_BASE_URL = "http://127.0.0.1:8000"
"""What links start with while ``[host] base_url`` is not set (a developer's machine)."""


class HostSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[host]`` section."""

    database_url: str = "sqlite+aiosqlite:///var/kabinet.sqlite3"
    """SQLAlchemy URL: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://…``."""
    database_echo: bool = False
    redis_url: str = ""
    """Empty: jobs, schedules, sessions and rate limits stay in this process (embedded)."""
    var_dir: str = "var"
    """Where the embedded default keeps its database, messages and files."""
    base_url: str = ""
    """The address people open the portal at (``https://portal.example.com``): every link
    in a message (e-mail, SMS, Telegram, push) starts with it. Required in production
    (``kabinet check`` says so when it is missing, ``serve``/``worker``/``scheduler``
    warn); ``kabinet demo`` uses the address it serves. Empty: :data:`LOCAL_BASE_URL`."""
    secret_key: str = ""
    """The portal's one secret: every key (sessions, CSRF, links, what rests sealed in the
    database) is derived from it (``kabinet.keys``). Empty: generated once into
    ``<var_dir>/secret.key`` and kept there."""
    previous_secret_keys: list[str] = msgspec.field(default_factory=list)
    """Secrets used before a rotation: what they sealed still opens (and is sealed again
    under the current one when next written). Sessions and links they signed end."""
    debug: bool = False
    language: str = "ru"
    languages: list[str] = msgspec.field(default_factory=lambda: ["ru", "en"])
    timezone: str = "Europe/Moscow"
    openapi: bool = True
    """Serve the OpenAPI schema at ``/api/schema``."""
    openapi_public: bool = False
    """Show the schema to anonymous visitors too (the demo does); else to signed-in people."""
    hsts: bool = False
    """Send Strict-Transport-Security even when ``base_url`` is not ``https://``."""
    access_log: bool = True
    """One log line per request (method, path, status, duration, request id)."""
    metrics_token: str = ""
    """The bearer token Prometheus (or Zabbix) sends to read ``/metrics``
    (``Authorization: Bearer …``; docs/operations.md, "Metrics"). Empty: no ``/metrics``."""
    events_kept_days: int = 30
    """Days a relayed event whose every subscriber handled it stays in the outbox (its
    payload may name people; docs/operations.md, "Personal data"). 0: kept for good."""
    log_format: str = "console"
    """``console`` (readable) or ``json`` (production)."""
    log_level: str = "INFO"
    files_backend: Literal["local", "s3"] = "local"
    """Where files are kept (see kabinet.files): a local folder or S3-compatible storage."""
    files_dir: str = ""
    """The local folder; empty: ``<var_dir>/files``."""
    files_max_size_mb: int = 25
    """The largest file any app may store."""
    s3_endpoint_url: str = ""
    """Empty: AWS; else the S3-compatible server (MinIO, Yandex Object Storage, …)."""
    s3_bucket: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = ""
    s3_part_size_mb: int = 8
    """Part size of multipart uploads (at least 5); one part is held in memory per upload."""


def check_base_url(raw: RawSettings, value: str) -> None:
    """``[host] base_url`` is empty or an absolute http(s) address (an optional path prefix,
    no query): what every link in a message starts with."""
    if not value:
        return
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or (parts.fragment or "@" in parts.netloc or any(c.isspace() for c in value))
    ):
        raise SettingsError(
            raw._where(("host", "base_url"))
            + f": expected the portal's address like https://portal.example.com, got {value!r}"
        )


@dataclasses.dataclass(frozen=True)
class RawSettings:
    """Settings as read, before each section is validated by its struct."""

    path: Path | None
    """The file read, or ``None`` when there was none (all defaults)."""
    sections: Mapping[str, Mapping[str, Any]]
    from_env: Mapping[tuple[str, ...], str]
    """Key paths (section, key, …) that came from the environment, with the variable name."""

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    def enabled(self, plugin: str) -> bool:
        value = self.sections.get(plugin, {}).get("enabled", True)
        if isinstance(value, str) and value.lower() in _BOOLS:
            value = _BOOLS[value.lower()]
        if not isinstance(value, bool):
            raise SettingsError(
                self._where((plugin, "enabled")) + f": expected bool (true or false), got {value!r}"
            )
        return value

    def _where(self, path: tuple[str, ...]) -> str:
        """Where the value at ``path`` came from: the file, or the environment variable."""
        key = _dotted(path)
        for end in range(len(path), 1, -1):
            env = self.from_env.get(path[:end])
            if env is not None:
                return f"environment variable {env} (key {key})"
        return f"{self.path or DEFAULT_FILE}: {key}"

    def check_sections(self, known: list[str]) -> None:
        """Refuse a section no installed plugin owns, suggesting the closest plugin name."""
        for section in self.sections:
            if section in known:
                continue
            hint = difflib.get_close_matches(section, known, n=1, cutoff=0.5)
            tip = f"; did you mean [{hint[0]}]?" if hint else f" (installed: {', '.join(known)})"
            env = [v for k, v in sorted(self.from_env.items()) if k[0] == section]
            where = f"environment variable {env[0]}" if env else str(self.path or DEFAULT_FILE)
            raise SettingsError(f"{where}: [{section}]: no installed plugin has this name{tip}")

    def validate(self, name: str, struct: type[S]) -> S:
        """Validate section ``name`` by ``struct``; a fault is a :class:`SettingsError`."""
        data = self.section(name)
        if name != "host":
            data.pop("enabled", None)
        try:
            return msgspec.convert(data, type=struct, strict=False)
        except msgspec.ValidationError as exc:
            raise self._explain(name, struct, data, str(exc)) from None

    def _explain(
        self, name: str, struct: type[msgspec.Struct], data: dict[str, Any], message: str
    ) -> SettingsError:
        body, _, at = message.partition(" - at `")
        steps = _find_keys(struct, data, _parse_path(at.rstrip("`")) if at else [], message)
        path = (name, *map(str, steps))
        unknown = re.match(r"Object contains unknown field `(.+)`", body)
        if unknown:
            key = unknown.group(1)
            known = _fields(_type_at(struct, steps))
            hint = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            tip = f"; did you mean {hint[0]!r}?" if hint else ""
            choices = f" (known keys: {', '.join(sorted(known))})" if known and not hint else ""
            if name == "host" and key == "enabled":
                tip, choices = "; the host is always enabled", ""
            return SettingsError(f"{self._where((*path, key))}: unknown key{tip}{choices}")
        missing = re.match(r"Object missing required field `(.+)`", body)
        if missing:
            return SettingsError(
                f"{self._where((*path, missing.group(1)))}: required key is missing"
            )
        value = _lookup(data, steps)
        where = self._where(path)
        expected = re.match(r"Expected `(.+?)`, got `(.+?)`", body)
        if expected:
            return SettingsError(
                f"{where}: expected {expected.group(1)}, got {value!r} ({expected.group(2)})"
            )
        if body.startswith("Invalid enum value"):
            info = _type_at(struct, steps)
            values = getattr(info, "values", None)
            if values is None and isinstance(info, msgspec.inspect.EnumType):
                values = [m.value for m in info.cls]
            if values:
                choices = ", ".join(repr(v) for v in values)
                return SettingsError(f"{where}: expected one of {choices}, got {value!r}")
        if body.startswith("Expected "):
            return SettingsError(f"{where}: expected {body[9:].replace('`', '')}, got {value!r}")
        return SettingsError(f"{where}: {body.replace('`', '')} (got {value!r})")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated settings: the host's section, and the raw file for plugins' sections."""

    raw: RawSettings
    host: HostSettings
    plugins: Mapping[str, msgspec.Struct] = dataclasses.field(default_factory=dict)

    def of(self, plugin: str, struct: type[S]) -> S:
        """The validated settings section of ``plugin``."""
        value = self.plugins.get(plugin)
        if isinstance(value, struct):
            return value
        return self.raw.validate(plugin, struct)

    @property
    def var_dir(self) -> Path:
        base = self.raw.path.parent if self.raw.path else Path.cwd()
        return (base / self.host.var_dir).resolve()


def settings_path(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """The file to read: ``--settings``, else ``KABINET_SETTINGS``, else ``./settings.toml``."""
    if explicit:
        return Path(explicit)
    if env.get(SETTINGS_ENV):
        return Path(env[SETTINGS_ENV])
    default = Path(DEFAULT_FILE)
    return default if default.exists() else None


def load_raw(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> RawSettings:
    """Read the file and overlay the environment; no section is validated yet."""
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get(SETTINGS_ENV))
    file = settings_path(path, env)
    data: dict[str, Any] = {}
    if file is not None:
        if not file.exists():
            if explicit:
                raise SettingsError(f"{file}: settings file not found")
        else:
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{file}: not valid TOML: {exc}") from None
            except UnicodeDecodeError:
                raise SettingsError(f"{file}: not valid TOML: the file is not UTF-8") from None
            except OSError as exc:
                raise SettingsError(f"{file}: cannot read: {exc.strerror}") from None
    for section, value in data.items():
        if not isinstance(value, dict):
            raise SettingsError(f"{file}: {section}: expected a [{section}] table, got {value!r}")
    from_env: dict[tuple[str, ...], str] = {}
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p)
        if len(parts) < 2:
            raise SettingsError(f"environment variable {name}: expected KABINET__<SECTION>__<KEY>")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise SettingsError(f"environment variable {name}: {_dotted(parts)} is not a table")
            node = child
        node[parts[-1]] = _env_value(text)
        from_env[parts] = name
    return RawSettings(path=file, sections=data, from_env=from_env)


def load(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate the host's section; plugins' sections are validated with them."""
    raw = load_raw(path, env)
    return Settings(raw=raw, host=raw.validate("host", HostSettings))


def _env_value(text: str) -> Any:
    """An environment value: JSON for lists and tables, else the text (coerced later)."""
    stripped = text.strip()
    if stripped[:1] in "[{":
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return text
    return text


def _dotted(path: tuple[str, ...]) -> str:
    section, *rest = path
    return f"[{section}]" + ("" if not rest else " " + ".".join(rest))


def _parse_path(at: str) -> list[str | int | None]:
    """Steps of msgspec's error path ``$.a[0].b[...]``; ``None`` stands for a table key."""
    steps: list[str | int | None] = []
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", at.removeprefix("$")):
        if name:
            steps.append(name)
        else:
            steps.append(None if index == "..." else int(index))
    return steps


def _find_keys(
    struct: type[msgspec.Struct], data: dict[str, Any], steps: list[str | int | None], message: str
) -> list[str | int]:
    """Replace msgspec's ``[...]`` (a table key it does not name) by the key at fault: the
    first one that, kept alone in its table, still fails with the same message."""
    found: list[str | int] = []
    for step in steps:
        if step is not None:
            found.append(step)
            continue
        table = _lookup(data, found)
        culprit: str | int = "..."
        for key in table if isinstance(table, dict) else ():
            trial = _replaced(data, found, {key: table[key]})
            try:
                msgspec.convert(trial, type=struct, strict=False)
            except msgspec.ValidationError as exc:
                if str(exc) == message:
                    culprit = key
                    break
        found.append(culprit)
    return found


def _replaced(data: Any, steps: list[str | int], value: Any) -> Any:
    """A copy of ``data`` with the item at ``steps`` replaced by ``value``."""
    if not steps:
        return value
    head, *rest = steps
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    copy[head] = _replaced(data[head], rest, value)
    return copy


def _lookup(data: Any, steps: list[str | int]) -> Any:
    for step in steps:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _unwrap(info: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """The useful member of an optional type (``X | None`` is ``X``)."""
    while isinstance(info, msgspec.inspect.UnionType):
        members = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        structured = [t for t in members if isinstance(t, msgspec.inspect.StructType)]
        info = (structured or members or [msgspec.inspect.AnyType()])[0]
    return info


def _type_at(struct: type[msgspec.Struct], steps: list[str | int]) -> msgspec.inspect.Type | None:
    """The type of the value at ``steps`` inside ``struct``, or ``None`` when unknown."""
    info = _unwrap(msgspec.inspect.type_info(struct))
    for step in steps:
        if isinstance(info, msgspec.inspect.StructType) and isinstance(step, str):
            match = [f.type for f in info.fields if f.encode_name == step]
            if not match:
                return None
            info = match[0]
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        elif isinstance(
            info, (msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.VarTupleType)
        ):
            info = info.item_type
        else:
            return None
        info = _unwrap(info)
    return info


def _fields(info: msgspec.inspect.Type | None) -> list[str]:
    """Known key names of a struct type."""
    if isinstance(info, msgspec.inspect.StructType):
        return [f.encode_name for f in info.fields]
    return []
