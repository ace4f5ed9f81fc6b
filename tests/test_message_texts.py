"""What a message reads like (issue 16, points 3 and 10): every default template of every
plugin, on every channel and in every language, rendered the way a message is (the
notifications app's renderer, with the sample values), ends its sentences once: a date
that ends in an abbreviation ("25 нояб. 2026 г.") takes no second full stop."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kabinet.host import Host

pytestmark = pytest.mark.smoke

URL = re.compile(r"""https?://[^\s"'<>]+""")


@pytest.fixture
async def host(database_url: str, tmp_path: Path) -> AsyncIterator[Host]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "message-texts-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    await host.startup()
    try:
        yield host
    finally:
        await host.shutdown()


async def test_no_default_template_doubles_a_full_stop(host: Host) -> None:
    from kabinet_notifications.delivery import Renderer
    from kabinet_notifications.render import RECIPIENT_LANGUAGE
    from kabinet_notifications.services import service_of

    svc = await service_of(host)
    faults: list[str] = []
    rendered = 0
    for event, t in sorted(svc.catalog.types.items()):
        renderer = Renderer(svc, t)
        values: dict[str, Any] = {**t.variables, "recipient_name": "Анна"}
        for channel in svc.catalog.channels(event):
            for language in host.settings.host.languages:
                to_them = {**values, RECIPIENT_LANGUAGE: language}  # dates in their format
                content, clear = await renderer.render(channel, language, to_them)
                rendered += 1
                for part, text in (clear or content).items():
                    for m in re.finditer(r"\S*[^.\s]\.\.(?!\.)\S*", URL.sub(" ", text)):
                        faults.append(f"{event} {channel} {language} {part}: {m.group(0)}")
    assert rendered >= 40  # every plugin's templates were there
    assert faults == [], "\n".join(faults)
