"""Machine routes (Telegram webhook, SMS.ru callback) and the push subscription API."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.params import FromPath, JSONBody

from kabinet.access import machine, public, signed_in
from kabinet.inputs import fits
from kabinet.pages import principal_of
from kabinet_notifications import models, sending
from kabinet_notifications.channels.sms import SmsRu
from kabinet_notifications.crypto import derived
from kabinet_notifications.services import NotificationError, service_of

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host

Req = Request[Any, Any, Any]
SW = Path(__file__).parent / "static" / "notifications" / "sw.js"


_push = models.push_subscription.c


class PushKeys(msgspec.Struct):
    p256dh: Annotated[str, fits(_push.p256dh)]
    auth: Annotated[str, fits(_push.auth)]


class PushSubscription(msgspec.Struct):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    endpoint: Annotated[str, fits(_push.endpoint)]
    keys: PushKeys
    expirationTime: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None


class Unsubscribe(msgspec.Struct):
    endpoint: Annotated[str, fits(_push.endpoint)]


class Subscribed(msgspec.Struct):
    id: int


async def webhook_secret(request: Req) -> str:
    svc = await service_of(_host(request))
    config = (await svc.channel_configs())["telegram"]
    return str(config.get("telegram_webhook_secret") or derived(svc.host, "telegram-webhook"))


def _host(request: Req) -> Host:
    found: Host = request.app.state["kabinet.host"]
    return found


@post("/telegram/webhook", access=machine("signature"), status_code=200)
async def telegram_webhook(request: Req) -> dict[str, bool]:
    """One Update from Telegram; the secret-token header must match ours (else 403)."""
    sent = request.headers.get("x-telegram-bot-api-secret-token", "")
    # Bytes: compare_digest refuses a str with non-ASCII characters (a 500, not a 403).
    expected = (await webhook_secret(request)).encode()
    if not sent or not hmac.compare_digest(sent.encode("latin-1"), expected):
        raise PermissionDeniedException("wrong secret token")
    try:
        update = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise ValidationException("the body is not JSON") from None
    if not isinstance(update, dict):
        raise ValidationException("an Update is a JSON object")
    svc = await service_of(_host(request))
    linked = await svc.telegram_update(update)
    return {"ok": True, "linked": linked}


@post(
    "/sms/callback/{secret:str}",
    access=machine("signature"),
    status_code=200,
    media_type="text/plain",
)
async def sms_callback(request: Req, secret: FromPath[str]) -> Response[str]:
    """SMS.ru delivery reports (``data[N]`` fields); the answer ``100`` stops its retries."""
    host = _host(request)
    svc = await service_of(host)
    config = (await svc.channel_configs())["sms"]
    expected = str(config.get("sms_callback_secret") or derived(host, "sms-callback"))
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        raise PermissionDeniedException("wrong callback address")
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    gateway = SmsRu(config.get("sms_api_id", ""), base_url=config["sms_api_url"])
    try:
        reports = gateway.parse_callback(fields)
    finally:
        await gateway.close()
    await sending.report(host, "sms", reports)
    return Response("100", media_type="text/plain")


@post("/push/subscriptions", access=signed_in, status_code=201)
async def subscribe(request: Req, data: JSONBody[PushSubscription]) -> Subscribed:
    principal = principal_of(request.scope)
    if principal.person_id is None:
        raise NotAuthorizedException()
    svc = await service_of(_host(request))
    try:
        sid = await svc.subscribe(
            principal.person_id, data.endpoint, data.keys.p256dh, data.keys.auth
        )
    except NotificationError as exc:
        # It fits the OpenAPI document; the push service's rules refuse it: 422, not 400.
        raise ClientException(
            exc.message, status_code=422, extra=[{"key": exc.field, "message": exc.message}]
        ) from None
    return Subscribed(id=sid)


@post("/push/unsubscribe", access=signed_in, status_code=200)
async def unsubscribe(request: Req, data: JSONBody[Unsubscribe]) -> dict[str, bool]:
    principal = principal_of(request.scope)
    if principal.person_id is None:
        raise NotAuthorizedException()
    svc = await service_of(_host(request))
    return {"removed": await svc.unsubscribe(principal.person_id, data.endpoint)}


@get("/notifications/sw.js", access=public, include_in_schema=False)
async def service_worker() -> Response[bytes]:
    """The push service worker, served from a path whose scope covers the profile page."""
    return Response(
        SW.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/notifications/"},
    )


def routers() -> list[ControllerRouterHandler]:
    return [
        Router(
            "/api/notifications",
            route_handlers=[telegram_webhook, sms_callback, subscribe, unsubscribe],
            tags=["notifications"],
        ),
        service_worker,
    ]
