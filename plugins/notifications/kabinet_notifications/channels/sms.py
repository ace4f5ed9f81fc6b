"""SMS through a gateway; SMS.ru's HTTP API is the one shipped.

Another provider is one class with the three methods of :class:`SmsGateway`: send one
text to one number, ask the state of sent ids, read its delivery callback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from kabinet_notifications.channels.base import Outcome, Outgoing, Verdict


@dataclasses.dataclass(frozen=True)
class Report:
    """A gateway's later word on one message."""

    provider_id: str
    verdict: Verdict
    error: str | None = None


class SmsGateway(Protocol):
    async def send(self, phone: str, text: str, delivery_id: int) -> Outcome: ...

    async def status(self, ids: list[str]) -> list[Report]: ...

    def parse_callback(self, form: Mapping[str, str]) -> list[Report]: ...

    async def close(self) -> None: ...


SMSRU_PERMANENT = {200, 202, 203, 204, 205, 207, 208, 209, 210, 211, 212, 300, 301, 302}
"""Request errors that another attempt cannot cure (bad key, number, sender, text…)."""
SMSRU_FINAL_FAILED = {104, 105, 106, 107, 108, 150}
SMSRU_TEXT = {
    -1: "message not found",
    104: "not delivered: TTL expired",
    105: "deleted by the operator",
    106: "phone failure",
    107: "not delivered: unknown reason",
    108: "rejected",
    150: "no route to the number",
    200: "bad api_id",
    201: "low balance",
    202: "bad recipient",
    203: "no text",
    204: "sender not approved",
    205: "message too long",
    206: "daily limit reached",
    207: "no route to the number",
    209: "number in the stop-list",
    220: "service unavailable",
}


def _reason(code: int, text: str | None) -> str:
    return f"SMS.ru {code}: {SMSRU_TEXT.get(code) or text or 'error'}"


def verdict_of_state(code: int) -> Verdict | None:
    """A message state (100–108, 150) as a delivery status; ``None`` while in transit."""
    if code == 103:
        return "delivered"
    if code in SMSRU_FINAL_FAILED:
        return "failed"
    return None


class SmsRu:
    """``POST /sms/send``, ``GET /sms/status`` and the ``data[N]`` callback of SMS.ru."""

    def __init__(
        self,
        api_id: str,
        sender: str = "",
        base_url: str = "https://sms.ru",
        timeout: float = 30.0,
    ) -> None:
        self.api_id = api_id
        self.sender = sender
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def close(self) -> None:
        await self.client.aclose()

    async def send(self, phone: str, text: str, delivery_id: int) -> Outcome:
        number = "".join(c for c in phone if c.isdigit())
        data = {"api_id": self.api_id, "to": number, "msg": text, "json": "1"}
        if self.sender:
            data["from"] = self.sender
        try:
            response = await self.client.post("/sms/send", data=data)
        except httpx.HTTPError as exc:
            return Outcome(delivery_id=delivery_id, verdict="retry", error=type(exc).__name__)
        if response.status_code >= 500 or response.status_code == 429:
            return Outcome(
                delivery_id=delivery_id, verdict="retry", error=f"HTTP {response.status_code}"
            )
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            return Outcome(delivery_id=delivery_id, verdict="retry", error="not JSON")
        if body.get("status") != "OK":
            code = int(body.get("status_code", 0))
            verdict: Verdict = "failed" if code in SMSRU_PERMANENT else "retry"
            return Outcome(
                delivery_id=delivery_id,
                verdict=verdict,
                error=_reason(code, body.get("status_text")),
            )
        item = (body.get("sms") or {}).get(number) or {}
        if item.get("status") != "OK":
            code = int(item.get("status_code", 0))
            verdict = "failed" if code in SMSRU_PERMANENT else "retry"
            return Outcome(
                delivery_id=delivery_id,
                verdict=verdict,
                error=_reason(code, item.get("status_text")),
            )
        return Outcome(delivery_id=delivery_id, verdict="sent", provider_id=str(item["sms_id"]))

    async def status(self, ids: list[str]) -> list[Report]:
        if not ids:
            return []
        params = {"api_id": self.api_id, "sms_id": ",".join(ids), "json": "1"}
        response = await self.client.get("/sms/status", params=params)
        response.raise_for_status()
        body = response.json()
        out = []
        for sms_id, item in (body.get("sms") or {}).items():
            code = int(item.get("status_code", 0))
            verdict = verdict_of_state(code)
            if verdict is not None:
                error = None if verdict == "delivered" else _reason(code, item.get("status_text"))
                out.append(Report(str(sms_id), verdict, error))
        return out

    def parse_callback(self, form: Mapping[str, str]) -> list[Report]:
        """``data[N]`` fields: ``sms_status`` / id / state code, further lines ignored."""
        out = []
        for key, value in form.items():
            if not key.startswith("data["):
                continue
            lines = [line.strip() for line in value.splitlines()]
            if len(lines) < 3 or lines[0] != "sms_status":
                continue
            try:
                code = int(lines[2])
            except ValueError:
                continue
            verdict = verdict_of_state(code)
            if verdict is not None:
                error = None if verdict == "delivered" else _reason(code, None)
                out.append(Report(lines[1], verdict, error))
        return out


class SmsChannel:
    name = "sms"

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        try:
            return [await self.gateway.send(m.to, m.body, m.delivery_id) for m in messages]
        finally:
            await self.gateway.close()
