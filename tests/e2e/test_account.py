"""Accounts in a real browser: sign up, confirm by the emailed link (a full page load of
the app's route), log in, log out; a wrong password is refused."""

from __future__ import annotations

import uuid

from playwright.sync_api import Page, expect

from tests.e2e.pages import sign_in
from tests.e2e.site import Account, Site


def test_sign_up_confirm_by_email_log_in_and_out(page: Page, site: Site) -> None:
    account = Account(f"new-{uuid.uuid4().hex[:10]}@example.com")
    page.goto("/signup")
    page.get_by_test_id("signup-email").fill(account.email)
    page.get_by_test_id("signup-password").fill(account.password)
    page.get_by_test_id("signup-submit").click()

    page.goto(site.emailed_link(account.email, "/verify-email"))
    expect(page.get_by_test_id("verify-status")).to_contain_text("confirmed")

    sign_in(page, account)
    assert page.request.get("/api/v1/me").json()["email"] == account.email
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("user-menu")).to_have_count(0)
    expect(page.get_by_test_id("login-link")).to_be_visible()
    assert page.request.get("/api/v1/me").status == 401
    page.reload()
    expect(page.get_by_test_id("login-link")).to_be_visible()


def test_a_wrong_password_is_refused(page: Page, account: Account) -> None:
    page.goto("/login")
    page.get_by_test_id("login-email").fill(account.email)
    page.get_by_test_id("login-password").fill("not " + account.password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_be_visible()
    expect(page.get_by_test_id("user-menu")).to_have_count(0)
    assert page.request.get("/api/v1/me").status == 401
