"""How the route matrix reaches identity's objects (the ``route_samples`` hook)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kabinet.access import Principal
from kabinet.identity.services import IDENTITY
from kabinet.routematrix import RouteSample, SampleRequest

if TYPE_CHECKING:
    from kabinet.host import Host


async def own_token(host: Host, organization: int, person_id: int) -> SampleRequest:
    """A token of the permitted person in ``organization``: only they may revoke it."""
    me = Principal(person_id=person_id, kind="person")
    made = await host.services.of(IDENTITY).create_token(
        me, "matrix", ["identity.tokens.manage"], [organization]
    )
    return SampleRequest(params={"token_id": made.row.id})


async def account(host: Host, organization: int) -> SampleRequest:
    """An account of no organization (staff reach every account): its data, its removal."""
    made = await host.services.of(IDENTITY).create_account(
        full_name="Образец", email=f"sample-{uuid.uuid4().hex[:10]}@example.test"
    )
    return SampleRequest(params={"account_id": made.id}, form={"confirm": str(made.id)})


SAMPLES = (
    RouteSample(
        path="/identity/profile/tokens/{token_id:int}/revoke",
        make=own_token,
        methods=("POST",),
        owned=True,
    ),
    RouteSample(path="/identity/accounts/{account_id:int}/data", make=account, addressed=False),
    RouteSample(path="/identity/accounts/{account_id:int}/erase", make=account, addressed=False),
    RouteSample(
        path="/identity/accounts/{account_id:int}/erase",
        make=account,
        methods=("POST",),
        addressed=False,
    ),
)
