"""Pages of the dictionaries app (placeholder while the pages are written)."""

from __future__ import annotations

from typing import Any

from kabinet.host import Host


def routers(host: Host) -> list[Any]:
    return []
