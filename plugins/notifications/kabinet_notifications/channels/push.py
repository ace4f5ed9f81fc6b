"""Web push with pywebpush and VAPID; a 404 or 410 means the subscription is gone.

A delivery sent twice (its worker killed after the push service accepted it, or a retry
after another subscription failed) shows once: each push names its delivery as its
``Topic`` (a push service replaces an undelivered message of the same topic, RFC 8030
5.4) and as the notification's ``tag`` (the browser replaces a shown notification of the
same tag: the service worker, ``static/notifications/sw.js``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kabinet_notifications.channels.base import Outcome, Outgoing

if TYPE_CHECKING:
    import aiohttp

# pywebpush (with aiohttp and its crypto) is imported when a push is sent, not when the
# portal starts: it is about a quarter of a second of every process's start-up.


class PushChannel:
    name = "push"

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            return [await self._one(session, m) for m in messages]

    async def _one(self, session: aiohttp.ClientSession, m: Outgoing) -> Outcome:
        """``m.to`` is a JSON list of the person's subscriptions; one success is enough."""
        import aiohttp
        from pywebpush import WebPushException, webpush_async

        subscriptions: list[dict[str, Any]] = json.loads(m.to)
        tag = f"kabinet-{m.delivery_id}"  # RFC 8030 topic: <= 32 URL-safe base64 characters
        body = {"title": m.subject, "body": m.body, "url": "/", "tag": tag}
        payload = json.dumps(body, ensure_ascii=False)
        gone: list[Any] = []
        sent = 0
        retry_after: float | None = None
        errors: list[str] = []
        for sub in subscriptions:
            info = {
                "endpoint": sub["endpoint"],
                "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]},
            }
            try:
                await webpush_async(
                    info,
                    payload,
                    vapid_private_key=self.config["vapid_private_key"],
                    vapid_claims={
                        "sub": self.config.get("vapid_subject") or "mailto:admin@localhost"
                    },
                    ttl=int(self.config.get("push_ttl") or 86400),
                    headers={"Topic": tag},
                    timeout=float(self.config.get("http_timeout") or 30),
                    aiohttp_session=session,
                )
                sent += 1
            except WebPushException as exc:
                status = exc.response.status if exc.response is not None else 0
                if status in (404, 410):
                    gone.append(sub["id"])
                elif status == 429 or status >= 500:
                    header = (
                        exc.response.headers.get("Retry-After")
                        if exc.response is not None
                        else None
                    )
                    retry_after = float(header) if header and header.isdigit() else None
                    errors.append(f"retry:{status}")
                else:
                    errors.append(f"HTTP {status}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors.append(f"retry:{type(exc).__name__}")
        if sent:
            return Outcome(delivery_id=m.delivery_id, verdict="sent", gone=tuple(gone))
        if any(e.startswith("retry:") for e in errors):
            return Outcome(
                delivery_id=m.delivery_id,
                verdict="retry",
                error=", ".join(e.removeprefix("retry:") for e in errors),
                retry_after=retry_after,
                gone=tuple(gone),
            )
        error = ", ".join(errors) or "every subscription is gone (404/410)"
        return Outcome(delivery_id=m.delivery_id, verdict="failed", error=error, gone=tuple(gone))
