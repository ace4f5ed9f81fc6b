"""What a plugin hands the host through its hooks.

These are plain frozen dataclasses: they carry callables, classes and paths that are not
wire data, so they are not ``msgspec`` structs. Settings sections and API bodies are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from kabinet.host import Host


class NoSettings(msgspec.Struct, forbid_unknown_fields=True):
    """The settings section of a plugin that takes none."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manifest:
    """Who a plugin is and what it needs.

    ``name`` is the plugin's one identifier: its settings section, the prefix of its
    tables (``<name>_``), its routes (``/<name>/``, ``/api/<name>/``), its permissions
    (``<name>.…``) and its migrations' version table.
    """

    name: str
    version: str
    title: Mapping[str, str]
    """Human title per language code, at least ``ru`` and ``en``."""
    requires_host: str = ">=0"
    """A PEP 440 specifier the installed host version must satisfy."""
    requires: tuple[str, ...] = ()
    """Names of plugins that must be installed and enabled for this one to work."""
    settings: type[msgspec.Struct] = NoSettings
    """The struct that validates this plugin's section of ``settings.toml``."""
    description: str = ""
    summary: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """One line per language code saying what the app gives people, under its title on the
    portal's landing page (``description`` is for operators: ``kabinet plugins``)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Database:
    """A plugin's tables and the folder of its Alembic revisions."""

    metadata: MetaData
    migrations: Path
    """The folder holding this plugin's Alembic revision files (its ``versions``)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Permission:
    """A permission a plugin checks, with labels and the built-in roles that get it."""

    code: str
    """``<plugin>.<area>.<action>``, e.g. ``shipments.orders.view``."""
    label: Mapping[str, str]
    default_roles: tuple[str, ...] = ()
    """Built-in roles (``user``, ``client``, ``manager``, ``admin``) granted it by default."""
    scope: str = "organization"
    """``organization`` (held in one organization) or ``global`` (staff-wide)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class NavItem:
    """An entry in the page shell's navigation."""

    path: str
    label: Mapping[str, str]
    permission: str | None = None
    """Shown only to people holding this permission; ``None`` shows it to everyone signed in."""
    order: int = 100
    icon: str = ""
    section: Literal["main", "admin", "personal"] = "main"
    """Where the header shows it: ``main``, the bar of sections; ``admin``, the
    "Administration" menu at the end of that bar (settings and staff tools); ``personal``,
    the menu under the person's name (their profile and preferences)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Panel:
    """A piece of one app's page shown inside another app's page.

    The target page renders every panel registered for its ``slot`` (e.g.
    ``companies.organization``) by calling ``render`` with the page's context.
    """

    slot: str
    name: str
    render: Callable[..., Awaitable[str] | str]
    permission: str | None = None
    order: int = 100
    title: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EventType:
    """An event a plugin publishes, by name (``<plugin>.<thing>.<happened>``)."""

    name: str
    payload: type[msgspec.Struct] | None = None
    description: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Subscription:
    """A handler called (as a job, at least once) for each event of one type."""

    event: str
    name: str
    """Unique name of this subscriber; what it has handled is recorded under it."""
    handler: Callable[..., Awaitable[None] | None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Actor:
    """A background job a plugin contributes (a dramatiq actor in production)."""

    name: str
    fn: Callable[..., Any]
    queue: str = "default"
    max_retries: int = 5
    time_limit_ms: int = 10 * 60 * 1000
    title: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """What the job does, per language code (``ru``, ``en``), as the admins' page of
    failed jobs names it; without it the page names the app and shows ``name``."""
    bulk: bool = False
    """Work in bulk that must never delay other jobs (thousands of file fetches): give it
    a queue of its own. The embedded runner runs due bulk jobs only behind every other due
    job, ``EmbeddedJobs.bulk_concurrency`` at a time, beside (not in) the other jobs'
    places; ``kabinet worker`` runs bulk queues on threads of their own (``run_worker``'s
    ``bulk_threads``), so they never hold the threads of the other queues."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Schedule:
    """A periodic job: either a cron expression or an interval in seconds."""

    name: str
    actor: str
    cron: str | None = None
    interval: float | None = None
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval is None):
            msg = f"schedule {self.name!r}: give exactly one of cron or interval"
            raise ValueError(msg)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HealthCheck:
    """A health check; ``check`` returns ``None`` when healthy, else a short reason.

    ``readiness=True``: the check says whether *this process can serve* (its database, its
    Redis); ``/ready`` answers 503 while it fails, so a load balancer takes the process out
    of rotation. ``readiness=False``: an *alert* about something outside the process (an
    outside system down, a feed gone stale): shown by ``GET /health/checks`` (503 while one
    fails, for monitoring) and ``kabinet check``, logged as a warning when it fails, and
    never taking the portal out of rotation, which would not bring the outside system back.

    A check of a plugin whose migrations are pending is not run (its tables may not exist
    yet): it shows as failed with the pending revisions instead.
    """

    name: str
    check: Callable[[Host], Awaitable[str | None]]
    readiness: bool = True


# -- notifications (declared by any app; the notifications plugin sends them) ---------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipients:
    """Who receives a notification, read from its event's payload.

    Either ``person`` (the payload key holding one person's account id), or
    ``organization`` (the payload key holding an organization id) with ``permission``:
    the people who hold that permission in that organization
    (``host.access.people(permission, organization)``). Both may be given.
    """

    person: str | None = None
    organization: str | None = None
    permission: str | None = None

    def __post_init__(self) -> None:
        if self.person is None and self.organization is None:
            msg = "recipients: give person, or organization with permission"
            raise ValueError(msg)
        if (self.organization is None) != (self.permission is None):
            msg = "recipients: organization and permission go together"
            raise ValueError(msg)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DefaultTemplate:
    """The template a notification starts with on one channel in one language (Jinja2).

    ``channel`` is ``email``, ``sms``, ``telegram`` or ``push``. ``subject`` is the
    e-mail subject or the push title; ``body`` is the e-mail text part, the SMS text,
    the Telegram text (HTML parse mode) or the push body; ``html`` is the e-mail HTML part.
    """

    channel: str
    language: str
    body: str
    subject: str = ""
    html: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotificationType:
    """A notification an app can send when its event is published.

    ``variables`` are the payload keys a template may use, each with a sample value for
    the preview (the recipient's ``recipient_name`` is always added). ``secrets`` names
    variables that are secrets (codes, links): stored and shown masked. A ``mandatory``
    notification cannot be deactivated nor refused by a person.
    """

    event: str
    title: Mapping[str, str]
    recipients: Recipients
    variables: Mapping[str, str] = dataclasses.field(default_factory=dict)
    templates: tuple[DefaultTemplate, ...] = ()
    mandatory: bool = False
    secrets: tuple[str, ...] = ()
    description: str = ""


# -- entity sinks (the integration app delivers records from the production system) -------


class Rejection(str):
    """A sink's reason for refusing a record, as a machine code with parameters.

    The string itself is the English message (what a reader of plain strings sees); the
    integration app stores ``code`` and ``params`` with it and shows the reason in the
    reader's language from its catalog of codes (``kabinet_integration.reasons.CODES``:
    ``unknown_counterparty``, ``unknown_contract``, ``unknown_order`` with ``value``;
    ``foreign_reference`` with ``kind``, ``value``, ``owner``, ``holder``; ``invalid_field``
    with ``field`` and ``message``, an English message id of a gettext catalog; ``empty_id``;
    ``not_our_request`` with ``value``; ``answer_mismatch`` with ``external_id``,
    ``portal_id``, ``linked``). A code it does not know is shown as the message.

        rejected[key] = Rejection(f"unknown contract {ref!r}", "unknown_contract", value=ref)
    """

    code: str
    params: dict[str, str]

    def __new__(cls, message: str, code: str, /, **params: str) -> Rejection:
        made = super().__new__(cls, message)
        made.code = code
        made.params = params
        return made


@dataclasses.dataclass(frozen=True, kw_only=True)
class SinkResult:
    """What one batch did: counts, and the records refused with their reason (by key)."""

    created: int = 0
    updated: int = 0
    hidden: int = 0
    unchanged: int = 0
    rejected: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Key of a refused record -> why (the integration app sets it aside in quarantine): a
    plain English message, or a :class:`Rejection` shown in the reader's language."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class EntitySink:
    """One kind of entity a plugin accepts from outside, applied in bulk.

    The integration app maps the production system's fields into ``struct`` (from its
    settings) and calls ``apply(host, session, records)`` in its own transaction, so the
    cursor moves with the committed batch. ``apply`` is idempotent: a record identical to
    the stored one writes nothing, a changed one is updated, one marked deleted is hidden.
    ``depends_on`` names sinks whose batches go first (orders after counterparties): the
    integration app orders every page by it (a cycle, or a name no enabled plugin declares,
    stops the portal at start-up and fails ``kabinet check``, naming the sink).

    Which production-system set feeds the sink, and how its fields map into ``struct``,
    is the integration's settings (``[integration.sources.<name>.feeds]``, ``.sets``,
    ``.fields``, ``.values``), never code: any plugin's sink is fed by settings alone.

    What a sink needs done after a batch, it declares, and the integration does it
    generically: ``files`` (fetch the files its records name into ``host.files``) and
    ``refreshes`` (ask the production system again for records of another sink, such
    as balances after contracts).
    """

    name: str
    """``<plugin>.<entity>``, e.g. ``companies.counterparty``; unique in the portal."""
    struct: type[msgspec.Struct]
    apply: Callable[..., Awaitable[SinkResult]]
    """``async (host, session, records: Sequence[struct], *, notify: bool) -> SinkResult``.

    ``notify`` is False for a first load, a ``--full`` run or a backfill: what the batch
    changes is old news, and the events the sink publishes say so (``notify=False`` in
    their payload), so nobody is sent a notification of it."""
    key: str = "external_id"
    """The struct field that identifies a record in the production system."""
    depends_on: tuple[str, ...] = ()
    title: Mapping[str, str] = dataclasses.field(default_factory=dict)
    files: Callable[[Sequence[Any]], Iterable[str]] | None = None
    """``(records) -> file ids``: the files a batch's applied records name (an order's
    documents), fetched into the host's file storage (ahead after a delta, or when first
    asked for) from the catalog the feed's ``files`` setting names. Called in the batch's
    transaction, with the records the sink did not refuse."""
    file_key: Callable[[str], str] | None = None
    """``(file id) -> storage key``: where this sink's plugin reads a file of its records
    in ``host.files`` (given with ``files``, or for a sink of attached files)."""
    refreshes: Callable[[Sequence[Any]], Mapping[str, Iterable[str]]] | None = None
    """``(records) -> {sink name: keys}``: records of other sinks this batch makes stale
    (a contract's balance after the contract, its orders or its invoices). They are
    marked owed in the batch's transaction and asked for at the end of the run (and of
    every later run, until stored) through the feed of that sink (a register's Balance
    function); a sink no feed of the source serves is ignored."""
