"""A link request is withdrawn from "My companies" by the person who sent it (issue 16,
point 11): the page offers the button while the request is open, the request becomes
"withdrawn" with its history, and nobody else can take it back."""

from __future__ import annotations

import re
import uuid

import pytest

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_companies.services import CompaniesService
from kabinet_companies.validation import make_inn

pytestmark = pytest.mark.smoke


def _row(html: str, request_id: int) -> str:
    found = re.search(rf'<tr data-request="{request_id}">(.*?)</tr>', html, re.S)
    assert found is not None, html
    return found.group(1)


async def test_the_sender_withdraws_an_open_request_from_the_page(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    me = (await web.person(name="Заявитель")).id
    made = await svc.requests.create(
        me, inn=make_inn(uuid.uuid4().int % 10**8 + 10**8), company_name="ООО Отзыв",
        new_company=True,
    )  # fmt: skip
    mine = await web.signed_in(me)
    page = await mine.get("/companies/my")
    action = f'action="/companies/my/requests/{made.id}/withdraw"'
    assert action in _row(page.text, made.id)
    assert "Отозвать" in _row(page.text, made.id)

    # Someone else cannot take it back: the request stays open.
    other = await web.signed_in(await web.person(name="Чужой"))
    refused = await other.post(f"/companies/my/requests/{made.id}/withdraw")
    assert refused.status_code in (302, 303)
    assert (await svc.requests.mine(me))[0].status == "new"

    done = await mine.post(f"/companies/my/requests/{made.id}/withdraw")
    assert done.status_code in (302, 303)
    assert done.headers["location"] == "/companies/my"
    assert (await svc.requests.mine(me))[0].status == "withdrawn"
    after = await mine.get("/companies/my")  # with the message the redirect's cookie carries
    assert "Запрос отозван." in after.text
    assert action not in after.text  # a withdrawn request offers no button
    assert "отозван" in _row(after.text, made.id)

    again = await mine.post(f"/companies/my/requests/{made.id}/withdraw")
    assert again.status_code in (302, 303)
    shown = await mine.get("/companies/my")
    assert "Такого открытого запроса нет" in shown.text
