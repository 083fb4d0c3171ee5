"""Outgoing email: templates rendered from files, sent through SendGrid's official client."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail, MailSettings, SandBoxMode

from api.errors import Unavailable
from api.settings import ApiAppSettings

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates" / "email"
"""`<name>.subject.txt`, `<name>.txt` and `<name>.html` for each email."""

SEND_TIMEOUT_S = 15.0
"""The SendGrid client waits forever by default; a hung request must not hold a sign-up."""


class EmailSender(Protocol):
    """What routes send email through (the `Mailer`, or a test's recorder)."""

    async def send(self, to: str, template: str, **context: Any) -> None:
        """Render the template with `context` and send it to `to`."""


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """One email, ready to send."""

    subject: str
    text: str
    html: str


def link(public_url: str, path: str, **query: str) -> str:
    """An absolute link into the site for an email, e.g. `link(url, "/verify-email",
    token=t)`."""
    url = public_url.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


def template_environment() -> Environment:
    """Jinja2 over the email templates: HTML escaped, a missing variable an error."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


class Mailer:
    """Renders and sends the site's emails.

    Without `accounts.email.sendgrid_api_key` nothing is sent: each email is logged
    instead (the default of a development or self-hosted setup).

    Args:
        settings: `accounts.email` (key, API host, sandbox mode, sender) and
            `accounts.public_url` (given to every template as `site`).
    """

    def __init__(self, settings: ApiAppSettings) -> None:
        self._settings = settings.accounts.email
        self._site = settings.accounts.public_url.rstrip("/")
        self._templates = template_environment()
        self._client: SendGridAPIClient | None = None
        key = self._settings.sendgrid_api_key
        if key is not None:
            self._client = SendGridAPIClient(
                key.get_secret_value(), host=self._settings.sendgrid_host.rstrip("/")
            )
            self._client.client.timeout = SEND_TIMEOUT_S

    def render(self, template: str, **context: Any) -> RenderedEmail:
        """Render `<template>.subject.txt`, `.txt` and `.html` with `context` and `site`.

        Raises:
            jinja2.TemplateNotFound: If there is no such template.
            jinja2.UndefinedError: If the template uses a variable not given.
        """
        values = {"site": self._site, **context}
        subject = self._templates.get_template(f"{template}.subject.txt").render(values)
        return RenderedEmail(
            subject=" ".join(subject.split()),
            text=self._templates.get_template(f"{template}.txt").render(values),
            html=self._templates.get_template(f"{template}.html").render(values),
        )

    async def send(self, to: str, template: str, **context: Any) -> None:
        """Render an email and send it (on a worker thread: the client blocks).

        Raises:
            Unavailable: If SendGrid refused it or could not be reached (logged).
        """
        email = self.render(template, **context)
        if self._client is None:
            # Without a mail service (self-hosted, `make run`) this line is how the owner
            # of the address follows the link: at INFO, which `tickscan run` shows.
            links = [str(v) for k, v in context.items() if k == "link" or k.endswith("_link")]
            logger.info(
                "no mail service configured: email %r to %s not sent; %s",
                email.subject,
                to,
                f"open {' or '.join(links)}" if links else "it has no link",
            )
            logger.debug("email to %s, text:\n%s", to, email.text)
            return
        await asyncio.to_thread(self._post, to, email)

    def _post(self, to: str, email: RenderedEmail) -> None:
        assert self._client is not None
        message = Mail(
            from_email=self._settings.sender,
            to_emails=to,
            subject=email.subject,
            plain_text_content=email.text,
            html_content=email.html,
        )
        if self._settings.sandbox:
            message.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
        try:
            self._client.send(message)
        except (HTTPError, OSError) as exc:  # OSError: URLError, timeouts, refused connections
            why = f"{exc.status_code} {exc.body!r}" if isinstance(exc, HTTPError) else str(exc)
            logger.error("sending %r to %s failed: %s", email.subject, to, why)
            raise Unavailable("the email could not be sent: try again later") from None
