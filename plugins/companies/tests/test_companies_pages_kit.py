"""The companies pages on the host's page kit (issue 17, point 3): lists paged with
``?page=`` (links keep the filters, htmx gets the table alone, a page that is no number is
a 400 naming ``page``), refusals beside their field, a damaged id a flash, never a 500."""

from __future__ import annotations

import re
import uuid

import pytest

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_companies.services import CompaniesService

pytestmark = pytest.mark.smoke


async def test_the_organizations_list_pages_with_the_kits_pager(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    word = f"Paged{uuid.uuid4().hex[:6]}"
    for n in range(51):
        await svc.create_organization(f"ООО {word} {n:02d}")
    admin = await web.signed_in(await web.person("admin"))

    first = await admin.get(f"/companies/organizations?q={word}")
    assert first.status_code == 200
    assert first.text.count(f"ООО {word}") == 50
    assert '<span aria-current="page">1 / 2</span>' in first.text
    assert f'href="/companies/organizations?q={word}&amp;page=2" rel="next"' in first.text

    second = await admin.get(f"/companies/organizations?q={word}&page=2")
    assert second.text.count(f"ООО {word}") == 1
    assert '<span aria-current="page">2 / 2</span>' in second.text

    table = await admin.get(
        f"/companies/organizations?q={word}&page=2", headers={"HX-Request": "true"}
    )
    assert table.status_code == 200
    assert "<html" not in table.text
    assert f"ООО {word} 50" in table.text

    broken = await admin.get("/companies/organizations?page=два")
    assert broken.status_code == 400
    assert "page" in broken.text


async def test_the_cards_forms_show_each_refusal_beside_its_field(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    org = await svc.create_organization("ООО Карточка")
    admin = await web.signed_in(await web.person("admin"))

    invited = await admin.post(
        f"/companies/organizations/{org.id}/invitations",
        data={"full_name": "Гость Неверный", "email": "не-адрес", "role": "client"},
    )
    assert invited.status_code == 400
    email = re.search(
        r'<div class="field invalid">\s*<label for="f-email">.*?</div>', invited.text, re.S
    )
    assert email is not None
    assert 'id="e-email"' in email.group(0)
    assert 'value="Гость Неверный"' in invited.text  # what was typed stays

    saved = await admin.post(
        f"/companies/organizations/{org.id}", data={"name": "Ок", "inn": "123"}
    )
    assert saved.status_code == 400
    assert '<details class="co-edit" open>' in saved.text  # the edit form is shown open
    assert 'id="e-inn"' in saved.text
    assert 'value="123"' in saved.text

    damaged = await admin.post(
        f"/companies/organizations/{org.id}/managers", data={"person_id": "x"}
    )
    assert damaged.status_code == 303  # back to the card, the reason as a flash message
    assert damaged.headers["location"] == f"/companies/organizations/{org.id}"


async def test_the_consent_text_refused_keeps_what_was_typed(host: Host, web: Portal) -> None:
    admin = await web.signed_in(await web.person("admin"))
    refused = await admin.post(
        "/companies/consent/edit", data={"text_ru": "", "text_en": "New text"}
    )
    assert refused.status_code == 400
    assert 'id="e-text_ru"' in refused.text
    assert ">New text</textarea>" in refused.text
    published = await admin.post(
        "/companies/consent/edit", data={"text_ru": "Текст", "text_en": "Text"}
    )
    assert published.status_code == 303
    assert published.headers["location"] == "/companies/consent/edit"
