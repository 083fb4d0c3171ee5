"""Password hashes (argon2id at the configured cost) and the rules of a new password."""

from __future__ import annotations

import asyncio

import pytest

from api.accounts.passwords import Passwords, check_rules
from api.errors import InvalidRequest
from api.settings import AccountsSettings

CHEAP = AccountsSettings(argon2_time_cost=1, argon2_memory_kib=8)


def test_a_hash_is_argon2id_at_the_configured_cost_and_salted() -> None:
    passwords = Passwords(CHEAP)
    first, second = passwords.hash("correct horse"), passwords.hash("correct horse")
    assert first.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert first != second  # a fresh salt each time
    assert passwords.verify(first, "correct horse")
    assert passwords.verify(second, "correct horse")


@pytest.mark.parametrize(
    ("encoded", "password"),
    [
        (Passwords(CHEAP).hash("correct horse"), "correct horsE"),
        (None, "correct horse"),  # an account without a password (or none at all)
        ("not-a-hash", "correct horse"),
        ("$argon2id$v=19$m=8,t=1,p=1$broken", "correct horse"),
    ],
)
def test_verify_answers_false_and_never_raises(encoded: str | None, password: str) -> None:
    assert Passwords(CHEAP).verify(encoded, password) is False


def test_a_hash_of_other_parameters_needs_rehashing() -> None:
    stronger = Passwords(AccountsSettings(argon2_time_cost=2, argon2_memory_kib=16))
    old = stronger.hash("correct horse")
    passwords = Passwords(CHEAP)
    assert passwords.verify(old, "correct horse")  # still accepted...
    assert passwords.needs_rehash(old)  # ...but due for the current parameters
    assert not passwords.needs_rehash(passwords.hash("correct horse"))


def test_the_async_forms_give_the_same_answers() -> None:
    passwords = Passwords(CHEAP)

    async def go() -> tuple[bool, bool]:
        encoded = await passwords.hash_async("correct horse")
        return (
            await passwords.verify_async(encoded, "correct horse"),
            await passwords.verify_async(encoded, "wrong horse"),
        )

    assert asyncio.run(go()) == (True, False)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "10 to 256 characters"),
        ("x" * 257, "10 to 256 characters"),
        ("Ada@Example.com", "cannot be the email address"),
    ],
)
def test_rules_refuse_with_a_clear_message(password: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as refused:
        check_rules(password, "ada@example.com")
    assert (refused.value.status, refused.value.code) == (422, "weak_password")


def test_rules_accept_the_bounds() -> None:
    check_rules("x" * 10, "ada@example.com")
    check_rules("x" * 256, None)
