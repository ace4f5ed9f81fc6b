"""Local servers speaking the providers' wire formats (SMS.ru, Telegram Bot API, a push
service that decrypts what it receives), and an SMTP server with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- SMS.ru ---------------------------------------------------------------------------------


@dataclass
class SmsRuFake:
    api_id: str = "good-key"
    sent: list[dict[str, str]] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    sent_ids: list[str] = field(default_factory=list)
    fail_http: int = 0
    """Answer the next N sends with HTTP 503."""
    delay: float = 0.0
    """Seconds each send takes (a slow gateway)."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sms/send", self.send)
        app.router.add_get("/sms/status", self.status)
        return app

    async def send(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_http:
            self.fail_http -= 1
            return web.Response(status=503, text="busy")
        form = dict(await request.post())
        if form.get("api_id") != self.api_id:
            return web.json_response(
                {"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"}
            )
        number = str(form["to"])
        if number.startswith("7999"):
            item = {"status": "ERROR", "status_code": 207, "status_text": "Нет маршрута"}
        else:
            sms_id = f"{uuid.uuid4().int % 10**6:06d}-{len(self.sent) + 10000000}"
            item = {"status": "OK", "status_code": 100, "sms_id": sms_id}
            self.states[sms_id] = 102
            self.sent_ids.append(sms_id)
            self.sent.append({k: str(v) for k, v in form.items()})
        return web.json_response(
            {"status": "OK", "status_code": 100, "sms": {number: item}, "balance": 41.5}
        )

    async def status(self, request: web.Request) -> web.Response:
        ids = request.query["sms_id"].split(",")
        out = {i: {"status": "OK", "status_code": self.states.get(i, -1), "cost": 0.5} for i in ids}
        return web.json_response({"status": "OK", "status_code": 100, "sms": out})


# -- Telegram Bot API -----------------------------------------------------------------------


@dataclass
class BotApiFake:
    token: str = "123:ABC"
    sent: list[dict[str, Any]] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    limited: set[int] = field(default_factory=set)
    updates: list[dict[str, Any]] = field(default_factory=list)
    """Pending updates; ``getUpdates`` with ``offset`` confirms (drops) the older ones."""
    polls: list[dict[str, Any]] = field(default_factory=list)
    next_update_id: int = 700000
    webhook_url: str = ""
    """Set: ``getUpdates`` answers 409 Conflict, as Telegram does while a webhook is set."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/sendMessage", self.send_message)
        app.router.add_post("/bot{token}/getUpdates", self.get_updates)
        return app

    def queue_start(self, chat: int, text: str) -> None:
        """An incoming private message, as Telegram would hold it for ``getUpdates``."""
        update_id = self.next_update_id
        self.next_update_id += 1
        self.updates.append(
            {
                "update_id": update_id,
                "message": {
                    "message_id": len(self.updates) + 1,
                    "from": {"id": chat, "is_bot": False, "first_name": "I"},
                    "chat": {"id": chat, "type": "private"},
                    "date": 1735700000,
                    "text": text,
                    "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
                },
            }
        )

    async def get_updates(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _tg_error(401, "Unauthorized")
        body = await request.json() if request.can_read_body else {}
        self.polls.append(body)
        if self.webhook_url:
            return _tg_error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = body.get("offset")
        if isinstance(offset, int):
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        limit = int(body.get("limit") or 100)
        return web.json_response({"ok": True, "result": self.updates[:limit]})

    async def send_message(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _tg_error(401, "Unauthorized")
        body = await request.json()
        chat = body["chat_id"]
        if chat in self.blocked:
            return _tg_error(403, "Forbidden: bot was blocked by the user")
        if chat in self.limited:
            return _tg_error(429, "Too Many Requests: retry after 41", {"retry_after": 41})
        if not body.get("text"):
            return _tg_error(400, "Bad Request: message text is empty")
        self.sent.append(body)
        result = {
            "message_id": 40 + len(self.sent),
            "from": {"id": 987, "is_bot": True, "first_name": "Kabinet", "username": "kabinet_bot"},
            "chat": {"id": chat, "type": "private"},
            "date": 1735700000,
            "text": body["text"],
        }
        return web.json_response({"ok": True, "result": result})


def _tg_error(code: int, text: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": text}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


# -- a push service ---------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Subscriber:
    """A browser's side of a subscription: its P-256 key and auth secret."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: __import__("os").urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(
            body, private_key=self.private, auth_secret=self.auth, version="aes128gcm"
        )


@dataclass
class PushFake:
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    topics: list[str | None] = field(default_factory=list)
    """Each accepted push's ``Topic`` header (None: none)."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/push/{sid}", self.push)
        return app

    async def push(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        if sid in self.gone:
            return web.json_response(
                {"code": 410, "errno": 106, "error": "Gone", "message": "expired"}, status=410
            )
        auth = request.headers.get("Authorization", "")
        if "TTL" not in request.headers or not auth.startswith("vapid t=") or ",k=" not in auth:
            return web.Response(status=400, text="missing TTL or VAPID")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return web.Response(status=400, text="encoding")
        payload = self.subscribers[sid].decrypt(await request.read())
        topic = request.headers.get("Topic")
        if topic is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic):
            return web.Response(status=400, text="bad Topic")  # RFC 8030 5.4
        self.received.append(
            {"sid": sid, "payload": json.loads(payload), "ttl": request.headers["TTL"]}
        )
        self.topics.append(topic)
        return web.Response(status=201, headers={"Location": f"/m/{len(self.received)}"})


# -- SMTP: a certificate for STARTTLS --------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
