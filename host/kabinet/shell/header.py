"""What the page shell's header shows: the person's navigation entries arranged for it.

The entries come from every plugin's ``navigation`` hook (``NavItem``), filtered by
permission and marked ``active`` by :meth:`kabinet.pages.Shell.nav_for`; each carries its
``group``, the localized title of the app that contributed it (the host's own apps share
one, "Platform"). Nothing here changes the hook's contract: the grouping is the header's.

- The bar (``section="main"``) lists the sections one by one while they fit the bar of a
  1024 px screen; beyond that each app's sections become one menu named after the app (an
  app with a single section keeps its link), so a portal with more apps still has one row.
- The administration menu (``section="admin"``) lists its entries under their app's name.
- The personal menu (``section="personal"``) is the person's own pages, in order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

BAR_ROOM = 96
"""How many characters of labels the bar holds at 1024 px (each entry counts its label and
3 for its padding; the administration menu counts too). The widest labels (Cyrillic, in
the fallback fonts of Debian) take about 9 px a character at the bar's 0.9rem."""


@dataclasses.dataclass(frozen=True)
class NavGroup:
    """One app's entries: a menu in the bar (or a heading in the administration menu)."""

    label: str
    items: list[Mapping[str, Any]]

    @property
    def active(self) -> bool:
        return any(item["active"] for item in self.items)

    @property
    def single(self) -> Mapping[str, Any] | None:
        """The one entry of an app with a single section (shown as a plain link)."""
        return self.items[0] if len(self.items) == 1 else None


@dataclasses.dataclass(frozen=True)
class HeaderNav:
    bar: list[NavGroup]
    """The bar's entries in order: each a group; a group with one entry is a link."""
    admin: list[NavGroup]
    personal: list[Mapping[str, Any]]
    grouped: bool
    """Whether the bar shows apps (``True``) or every section (``False``)."""

    @property
    def admin_active(self) -> bool:
        return any(group.active for group in self.admin)

    @property
    def empty(self) -> bool:
        return not self.bar and not self.admin


def groups(items: Iterable[Mapping[str, Any]]) -> list[NavGroup]:
    """``items`` by their ``group``, in the order each group first appears."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        found.setdefault(str(item.get("group") or ""), []).append(item)
    return [NavGroup(label, entries) for label, entries in found.items()]


def bar_width(main: list[Mapping[str, Any]], admin_label: str | None) -> int:
    """The room the bar's entries take, in characters (see :data:`BAR_ROOM`)."""
    width = sum(len(str(item["label"])) + 3 for item in main)
    return width + (len(admin_label) + 5 if admin_label else 0)


def header_nav(nav: Iterable[Mapping[str, Any]], admin_label: str = "") -> HeaderNav:
    """Arrange the person's entries (``nav`` of the page's context) for the header;
    ``admin_label`` is the administration menu's name, counted in the bar's width."""
    entries = list(nav)
    main = [i for i in entries if i["section"] == "main"]
    admin = [i for i in entries if i["section"] == "admin"]
    personal = [i for i in entries if i["section"] == "personal"]
    grouped = bar_width(main, admin_label if admin else None) > BAR_ROOM
    bar = groups(main) if grouped else [NavGroup(str(i["label"]), [i]) for i in main]
    return HeaderNav(bar=bar, admin=groups(admin), personal=personal, grouped=grouped)
