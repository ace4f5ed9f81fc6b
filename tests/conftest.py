"""Cross-app tests; the shared fixtures come from kabinet.testing (loaded by pytest's -p).

``demo_portal`` is the whole ``kabinet demo`` (every app, its own folder), built once per
session and shared by the browser tests that need nothing else: the journeys, the host's
pages, the working-in tests. Starting it costs about 12 s; each module that started its
own paid that again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from kabinet.testing import kabinet_server, require_chromium


class DemoPortal(NamedTuple):
    url: str  # where it serves: a free port, never 8000's address
    messages: Path  # the folder every message (e-mail, SMS, codes) is written to


@pytest.fixture(scope="session")
def demo_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPortal]:
    """``kabinet demo`` with every app, on a free port, with its data in a temporary
    folder; the environment's ``KABINET__*`` overrides (the test database) are left out."""
    require_chromium()  # before starting a server no browser test could use
    folder = tmp_path_factory.mktemp("demo-portal")
    var = folder / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET__")}
    env["KABINET_DEMO_DIR"] = str(var)
    with kabinet_server(folder, "demo", env=env, timeout=180) as url:
        yield DemoPortal(url, var / "messages")
