"""Every background job of every installed app says what it does in Russian and in English
(``Actor.title``): the admins' page of failed jobs names a job by it, and without one a
staff person reads only the app's name and a code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kabinet.host import Host

pytestmark = pytest.mark.smoke

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# The apps shipped with Kabinet that have jobs, and the host's own: a host missing one of
# them would make this test pass over its jobs unseen.
WITH_JOBS = {"host", "integration", "notifications", "shipments", "booking"}


async def test_every_actor_of_every_installed_app_has_a_title_in_ru_and_en(
    tmp_path: Path,
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "job-titles"\n')
    host = await Host.create(settings)  # every installed plugin, as `kabinet run` finds them
    apps = {plugin.name for plugin, _ in host.actors.values()}
    assert apps >= WITH_JOBS, f"apps with jobs not loaded: {sorted(WITH_JOBS - apps)}"

    untitled = []
    for name, (plugin, actor) in sorted(host.actors.items()):
        ru = actor.title.get("ru", "").strip()
        en = actor.title.get("en", "").strip()
        if not ru or not en or not CYRILLIC.search(ru) or CYRILLIC.search(en):
            untitled.append(f"{plugin.name}: {name} {dict(actor.title)}")
    assert untitled == []
