"""Outgoing mail over SMTP (the invitation links).

``smtplib`` runs in a thread, so a slow mail server never blocks the event loop; every send has
a timeout. Failures raise ``MailError``; the caller decides what a lost mail means.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from slipway_identity.config import IdentitySettings
from slipway_identity.domain.invitations import Mail


class MailError(Exception):
    """The mail server refused the message or could not be reached."""


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: IdentitySettings) -> SmtpMailer | None:
        """None when no SMTP host is configured (invitation tokens go to the inviter then)."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            timeout_s=settings.smtp_timeout_s,
        )

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, mail)

    def _send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc
