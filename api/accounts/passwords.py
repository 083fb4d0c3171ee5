"""Password hashes (argon2id) and the rules a new password must meet."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from api.errors import InvalidRequest
from api.settings import AccountsSettings

MIN_LENGTH = 10
MAX_LENGTH = 256
"""Bounds on a password's length; the upper one keeps one login from costing a lot of CPU."""

PARALLELISM = 1
"""One argon2 lane per hash: a small server's cores serve several sign-ins at once, and the
tests' 8 KiB memory cost allows no more (argon2 needs 8 KiB per lane)."""


def check_rules(password: str, email: str | None) -> None:
    """Refuse a password a user may not choose.

    Args:
        password: The proposed password.
        email: The account's email, which the password must not be.

    Raises:
        InvalidRequest: If it is shorter than 10 or longer than 256 characters, or is the
            email address.
    """
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidRequest(
            f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters", code="weak_password"
        )
    if email is not None and password.strip().lower() == email.lower():
        raise InvalidRequest("a password cannot be the email address", code="weak_password")


class Passwords:
    """Hashes and checks passwords with argon2id at the configured cost.

    Hashing is deliberately slow, so the async methods run it on a worker thread and the
    event loop keeps serving other requests meanwhile.

    Args:
        settings: `argon2_time_cost` and `argon2_memory_kib` (tests lower them).
    """

    def __init__(self, settings: AccountsSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=PARALLELISM,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        """The encoded argon2id hash of a password (a fresh random salt each time)."""
        return self._hasher.hash(password)

    def verify(self, encoded: str | None, password: str) -> bool:
        """Whether a password matches a stored hash; never raises on a mismatch.

        Args:
            encoded: The stored hash; None for an unknown account or one without a
                password: the password is then hashed anyway and refused, so the answer
                takes as long as for a real account and timing tells nothing.
            password: What the user typed.
        """
        if encoded is None:
            self._hasher.hash(password)
            return False
        try:
            return self._hasher.verify(encoded, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether a hash was made with other parameters than the configured ones."""
        return self._hasher.check_needs_rehash(encoded)

    async def hash_async(self, password: str) -> str:
        """`hash` on a worker thread."""
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, encoded: str | None, password: str) -> bool:
        """`verify` on a worker thread."""
        return await asyncio.to_thread(self.verify, encoded, password)
