"""Per-key serialisation: one coroutine at a time per key (e.g. per room)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Hashable

from twisted.internet import defer


class KeyedLock:
    def __init__(self):
        self._locks: dict[Hashable, defer.DeferredLock] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = defer.DeferredLock()
        await lock.acquire()
        try:
            yield
        finally:
            lock.release()
            if not lock.locked and not lock.waiting:
                self._locks.pop(key, None)
