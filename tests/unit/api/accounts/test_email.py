"""Email templates rendered from files, and the log-only mailer of a setup without SendGrid."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import jinja2
import pytest

from api.accounts.email import TEMPLATES, Mailer, link
from api.settings import AccountsSettings
from tickscan.settings import Settings

SITE = "https://scan.example.com"
CONTEXTS: dict[str, dict[str, Any]] = {
    "verify": {"link": f"{SITE}/verify-email?token=t1", "minutes": 60},
    "reset": {"link": f"{SITE}/reset-password?token=t2", "minutes": 60},
    "signup_exists": {"login_link": f"{SITE}/login", "reset_link": f"{SITE}/reset-password"},
    "locked": {"attempts": 5, "minutes": 15, "reset_link": f"{SITE}/reset-password"},
    "billing_notice": {
        "title": "Your payment failed",
        "paragraphs": ["We could not charge your card.", "Update it to keep Pro."],
        "link": f"{SITE}/billing",
    },
}


def mailer(tmp_path: Path) -> Mailer:
    return Mailer(Settings(data_dir=tmp_path, accounts=AccountsSettings(public_url=SITE + "/")))


def test_every_template_has_a_subject_a_text_and_an_html_part() -> None:
    names = {p.name.split(".")[0] for p in TEMPLATES.iterdir() if not p.name.startswith("_")}
    assert names >= set(CONTEXTS)
    for name in names:
        parts = {p.name for p in TEMPLATES.glob(f"{name}.*")}
        assert parts == {f"{name}.subject.txt", f"{name}.txt", f"{name}.html"}


@pytest.mark.parametrize("template", sorted(CONTEXTS))
def test_each_template_renders_its_links_in_both_parts(tmp_path: Path, template: str) -> None:
    email = mailer(tmp_path).render(template, **CONTEXTS[template])
    assert email.subject and "\n" not in email.subject
    links = [v for v in CONTEXTS[template].values() if isinstance(v, str) and "://" in v]
    for url in links:
        assert url in email.text
        assert f'href="{url}"' in email.html
    assert f"tickscan · {SITE}" in email.text  # `site` is public_url, for every template
    assert email.html.startswith("<!doctype html>")


def test_html_is_escaped_and_text_is_not(tmp_path: Path) -> None:
    notice = {"title": "Plan <Pro> & more", "paragraphs": ["<b>bold</b>"]}
    email = mailer(tmp_path).render("billing_notice", **notice)
    assert '<h1 style="font-size: 1.2rem;">Plan &lt;Pro&gt; &amp; more</h1>' in email.html
    assert "&lt;b&gt;bold&lt;/b&gt;" in email.html
    assert email.subject == "Plan <Pro> & more"
    assert "<b>bold</b>" in email.text
    assert "Manage your subscription" not in email.text  # no link given, no link line


def test_a_missing_variable_or_template_is_an_error_not_a_blank(tmp_path: Path) -> None:
    with pytest.raises(jinja2.UndefinedError):
        mailer(tmp_path).render("verify", minutes=60)
    with pytest.raises(jinja2.TemplateNotFound):
        mailer(tmp_path).render("welcome")


def test_without_an_api_key_the_email_and_its_link_are_logged_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # INFO is what `tickscan run` shows: a self-hosted user finishes signing up from it.
    caplog.set_level(logging.INFO, logger="api.accounts.email")
    asyncio.run(mailer(tmp_path).send("ada@example.com", "verify", **CONTEXTS["verify"]))
    asyncio.run(mailer(tmp_path).send("ada@example.com", "reset", **CONTEXTS["reset"]))
    asyncio.run(
        mailer(tmp_path).send("bob@example.com", "signup_exists", **CONTEXTS["signup_exists"])
    )
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "no mail service configured: email 'Confirm your email for tickscan' to "
        f"ada@example.com not sent; open {SITE}/verify-email?token=t1",
        "no mail service configured: email 'Reset your tickscan password' to "
        f"ada@example.com not sent; open {SITE}/reset-password?token=t2",
        "no mail service configured: email 'Someone tried to sign up to tickscan with your "
        "address' to "
        f"bob@example.com not sent; open {SITE}/login or {SITE}/reset-password",
    ]


def test_links_are_absolute_with_an_encoded_query() -> None:
    assert link(SITE + "/", "/reset-password", token="a+b/c=") == (
        f"{SITE}/reset-password?token=a%2Bb%2Fc%3D"
    )
    assert link(SITE, "/login") == f"{SITE}/login"
