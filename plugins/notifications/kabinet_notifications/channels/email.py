"""E-mail over SMTP with aiosmtplib: one connection for a batch, multipart text + HTML."""

from __future__ import annotations

import ssl
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid
from typing import Any

import aiosmtplib

from kabinet_notifications.channels.base import Outcome, Outgoing


def compose(m: Outgoing, sender: str, sender_name: str) -> Message:
    """text/plain, or multipart/alternative with text/html, UTF-8.

    Built with the ``email.mime`` classes: the modern ``EmailMessage`` API parses every
    header through its policy and costs several times more per message in a fan-out.
    """
    text = MIMEText(m.body or " ", "plain", "utf-8")
    msg: Message
    if m.html:
        msg = MIMEMultipart("alternative")
        msg.attach(text)
        msg.attach(MIMEText(m.html, "html", "utf-8"))
    else:
        msg = text
    msg["From"] = formataddr((str(Header(sender_name, "utf-8")), sender))
    msg["To"] = m.to
    msg["Subject"] = Header(m.subject, "utf-8").encode()
    msg["Message-ID"] = make_msgid(domain=sender.partition("@")[2] or "kabinet.local")
    return msg


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
        try:
            for i, m in enumerate(messages):
                msg = compose(m, self.config["email_from"], self.sender_name)
                try:
                    await smtp.send_message(msg)
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
                            delivery_id=m.delivery_id, verdict="sent", provider_id=msg["Message-ID"]
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
