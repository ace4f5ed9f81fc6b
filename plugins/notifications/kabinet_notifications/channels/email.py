"""E-mail over SMTP with aiosmtplib: one connection for a batch, multipart text + HTML."""

from __future__ import annotations

import base64
import functools
import re
import secrets
import ssl
from email.header import Header
from email.utils import formataddr, formatdate
from typing import Any

import aiosmtplib

from kabinet_notifications.channels.base import Outcome, Outgoing


@functools.lru_cache(maxsize=1024)
def _header(value: str) -> str:
    """RFC 2047 encoded words, folded: CR or LF in a value can never end the header."""
    return Header(value, "utf-8").encode(linesep="\r\n")


def _part(content_type: str, text: str) -> bytes:
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(text.encode())


_ADDRESS = re.compile(r"[!-~]+@[!-~]+")
"""Printable ASCII around an @: nothing that could break the To header or the envelope."""


class Composer:
    """Builds each message's bytes directly: text/plain, or multipart/alternative with
    text/html, UTF-8, base64 bodies.

    A fan-out sends thousands of messages whose only per-message work should be the
    person's text: the ``email`` package's generator (header folding through the policy,
    a regex compiled per boundary) cost more than the SMTP round trips, so the headers
    that are the same for a batch are encoded once and the rest is concatenated.
    """

    def __init__(self, sender: str, sender_name: str) -> None:
        self.sender = sender
        self.from_header = formataddr((_header(sender_name), sender))
        self.domain = sender.partition("@")[2] or "kabinet.local"
        self.token = secrets.token_hex(8)
        """Unique per batch: Message-IDs and boundaries are this plus the delivery id."""

    def message_id(self, m: Outgoing) -> str:
        """Stable across attempts when the message has a ``key`` (a message sent again
        after a worker died is the same message to the receiver)."""
        return f"<{m.key or self.token}.{m.delivery_id}@{self.domain}>"

    def compose(self, m: Outgoing) -> bytes:
        head = (
            f"From: {self.from_header}\r\nTo: {m.to}\r\nSubject: {_header(m.subject)}\r\n"
            f"Date: {formatdate(usegmt=True)}\r\nMessage-ID: {self.message_id(m)}\r\n"
        )
        text = _part("text/plain", m.body or " ")
        if not m.html:
            return head.encode() + text
        # No line of base64 or of the part headers starts with "--": no collision.
        boundary = f"=_{self.token}.{m.delivery_id}"
        return b"".join(
            (
                head.encode(),
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
                f"MIME-Version: 1.0\r\n\r\n--{boundary}\r\n".encode(),
                text,
                f"--{boundary}\r\n".encode(),
                _part("text/html", m.html),
                f"--{boundary}--\r\n".encode(),
            )
        )


class SmtpChannel:
    name = "email"

    def __init__(self, config: dict[str, Any], sender_name: str) -> None:
        self.config = config
        self.sender_name = sender_name

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        security = c.get("smtp_security", "starttls")
        context = None
        if c.get("smtp_ca_file"):
            context = ssl.create_default_context(cafile=c["smtp_ca_file"])
        return aiosmtplib.SMTP(
            hostname=c["smtp_host"],
            port=int(c.get("smtp_port") or (465 if security == "tls" else 587)),
            use_tls=security == "tls",
            start_tls=security == "starttls",
            username=c.get("smtp_username") or None,
            password=c.get("smtp_password") or None,
            timeout=float(c.get("smtp_timeout") or 30),
            tls_context=context,
        )

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        smtp = self._client()
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            return [_fail(m, f"SMTP authentication refused: {exc.code}") for m in messages]
        except (aiosmtplib.SMTPException, OSError) as exc:
            return [_retry(m, f"SMTP connection failed: {type(exc).__name__}") for m in messages]
        out: list[Outcome] = []
        composer = Composer(self.config["email_from"], self.sender_name)
        try:
            for i, m in enumerate(messages):
                if not _ADDRESS.fullmatch(m.to):
                    out.append(_fail(m, "not an e-mail address"))
                    continue
                try:
                    await smtp.sendmail(composer.sender, [m.to], composer.compose(m))
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    codes = [r.code for r in exc.recipients]
                    verdict = _fail if all(c >= 500 for c in codes) else _retry
                    out.append(verdict(m, f"recipient refused: {codes}"))
                except aiosmtplib.SMTPResponseException as exc:
                    verdict = _fail if exc.code >= 500 else _retry
                    out.append(verdict(m, f"SMTP {exc.code}"))
                except (aiosmtplib.SMTPException, OSError) as exc:
                    reason = f"SMTP connection lost: {type(exc).__name__}"
                    out.extend(_retry(rest, reason) for rest in messages[i:])
                    break
                else:
                    out.append(
                        Outcome(
                            delivery_id=m.delivery_id,
                            verdict="sent",
                            provider_id=composer.message_id(m),
                        )
                    )
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
        return out


def _fail(m: Outgoing, error: str) -> Outcome:
    return Outcome(delivery_id=m.delivery_id, verdict="failed", error=error)


def _retry(m: Outgoing, error: str) -> Outcome:
    return Outcome(delivery_id=m.delivery_id, verdict="retry", error=error)
