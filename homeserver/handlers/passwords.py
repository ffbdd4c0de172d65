"""Password hashing with Argon2id, off the reactor thread (a hash costs tens of ms)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from twisted.internet import threads


class PasswordHashing:
    def __init__(self, reactor, time_cost: int, memory_kib: int, parallelism: int):
        self._reactor = reactor
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism)
        # Verified against when an account does not exist, so that a wrong user name
        # takes as long as a wrong password and does not reveal which accounts exist.
        self._decoy = self._hasher.hash("decoy password that matches nothing")

    async def hash(self, password: str) -> str:
        return await threads.deferToThread(self._hasher.hash, password)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def _verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        try:
            self._hasher.verify(stored or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, False
        return stored is not None, self._hasher.check_needs_rehash(stored)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash) for a stored hash (None: no such account)."""
        return await threads.deferToThread(self._verify, stored, password)
