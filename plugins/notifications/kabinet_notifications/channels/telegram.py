"""Telegram Bot API ``sendMessage`` (HTML parse mode)."""

from __future__ import annotations

from typing import Any

import httpx

from kabinet_notifications.channels.base import Outcome, Outgoing


class TelegramApi:
    def __init__(
        self, token: str, base_url: str = "https://api.telegram.org", timeout: float = 30.0
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"{base_url.rstrip('/')}/bot{token}", timeout=timeout
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def call(self, method: str, **params: Any) -> httpx.Response:
        return await self.client.post(f"/{method}", json=params)


class TelegramChannel:
    name = "telegram"

    def __init__(self, api: TelegramApi) -> None:
        self.api = api

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        try:
            return [await self._one(m) for m in messages]
        finally:
            await self.api.close()

    async def _one(self, m: Outgoing) -> Outcome:
        chat = int(m.to) if m.to.lstrip("-").isdigit() else m.to
        try:
            response = await self.api.call(
                "sendMessage", chat_id=chat, text=m.body, parse_mode="HTML"
            )
        except httpx.HTTPError as exc:
            return Outcome(delivery_id=m.delivery_id, verdict="retry", error=type(exc).__name__)
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            message_id = (body.get("result") or {}).get("message_id")
            return Outcome(delivery_id=m.delivery_id, verdict="sent", provider_id=str(message_id))
        code = int(body.get("error_code") or response.status_code)
        text = str(body.get("description") or f"HTTP {response.status_code}")
        if code == 429:
            after = float((body.get("parameters") or {}).get("retry_after") or 1)
            return Outcome(
                delivery_id=m.delivery_id, verdict="retry", error=text, retry_after=after
            )
        if code >= 500:
            return Outcome(delivery_id=m.delivery_id, verdict="retry", error=text)
        # 403 blocked / deactivated: the chat is gone for us; 400/401: no retry helps.
        gone = (m.to,) if code == 403 else ()
        return Outcome(delivery_id=m.delivery_id, verdict="failed", error=text, gone=gone)
