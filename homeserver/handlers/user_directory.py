"""The user directory (``POST /user_directory/search``).

As Synapse does by default, a user finds the users who share a joined room with them
and the users joined to public rooms (join rule ``public`` or history
``world_readable``), by a case-insensitive match of every word of the term against the
user ID or display name. Exact matches rank first, then prefixes of the display name
or localpart, then prefixes of a later word of the display name, then the rest.

The directory's profiles and its set of public rooms are kept by the discovery follower
(see ``homeserver.handlers.search``); who shares a room is read from the current state
at query time, so leaving a room takes effect at once.
"""

from __future__ import annotations

from homeserver.handlers.search import DiscoveryFollower
from storage.stores.directory import DirectoryStore

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
MAX_TERM_LENGTH = 256


class UserDirectoryHandler:
    def __init__(self, store: DirectoryStore, follower: DiscoveryFollower):
        self._store = store
        self._follower = follower

    async def search(self, user_id: str, term: str, limit: int = DEFAULT_LIMIT) -> dict:
        limit = max(1, min(limit, MAX_LIMIT))
        words = term[:MAX_TERM_LENGTH].casefold().split()
        if not words:
            return {"results": [], "limited": False}
        await self._follower.wait_caught_up()
        users = await self._store.search_users(user_id, words, " ".join(words), limit + 1)
        results = []
        for user in users[:limit]:
            entry = {"user_id": user.user_id}
            if user.display_name is not None:
                entry["display_name"] = user.display_name
            if user.avatar_url is not None:
                entry["avatar_url"] = user.avatar_url
            results.append(entry)
        return {"results": results, "limited": len(users) > limit}
