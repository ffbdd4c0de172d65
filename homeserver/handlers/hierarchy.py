"""The space hierarchy: ``GET /_matrix/client/v1/rooms/{roomId}/hierarchy``.

Walks ``m.space.child`` state events (only those with a non-empty ``via`` list) depth
first, as the specification and Synapse do: a space's children are visited in the
specification's order (``order``, then timestamp, then room ID), each child's subtree
before the next child. Rooms the requester may not see are left out together with
what lies below them; a room may be seen when the requester is joined or invited, the
join rule is public or knockable, the history is world readable, or the join rule is
restricted to a room the requester is joined to. Loops and repeats are visited once.

Children this server does not know are skipped (asking other servers needs
federation). A page that ends before the walk does answers ``next_batch``; the walk's
remaining queue is kept in memory under that token for a while, bound to the
requester, the room and the ``suggested_only``/``max_depth`` it started with.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from homeserver.http.errors import MatrixError, invalid_param
from storage.stores.directory import ChildLink, DirectoryStore, RoomSummary

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_MAX_DEPTH = 50
MAX_MAX_DEPTH = 100
SESSION_LIFETIME_MS = 5 * 60 * 1000
MAX_SESSIONS = 10000


def _forbidden() -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", "You are not allowed to view this room.")


@dataclass
class _Queued:
    room_id: str
    depth: int


@dataclass
class _Session:
    user_id: str
    room_id: str
    suggested_only: bool
    max_depth: int
    queue: list[_Queued]
    processed: set[str]
    created_ms: int = 0


@dataclass
class _Requester:
    user_id: str
    memberships: dict[str, str] = field(default_factory=dict)


class HierarchyHandler:
    def __init__(self, hs, store: DirectoryStore):
        self._hs = hs
        self._store = store
        self._sessions: dict[str, _Session] = {}

    def _expire_sessions(self, now: int) -> None:
        for token in [t for t, s in self._sessions.items() if now - s.created_ms > SESSION_LIFETIME_MS]:
            del self._sessions[token]
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]

    async def get_hierarchy(self, user_id: str, room_id: str, *, suggested_only: bool = False,
                            limit: int | None = None, max_depth: int | None = None,
                            from_token: str | None = None) -> dict[str, Any]:
        if limit is not None and limit < 1:
            raise invalid_param("'limit' must be a positive integer")
        if max_depth is not None and max_depth < 0:
            raise invalid_param("'max_depth' must be a non-negative integer")
        limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        max_depth = min(DEFAULT_MAX_DEPTH if max_depth is None else max_depth, MAX_MAX_DEPTH)
        now = self._hs.clock.time_ms()
        self._expire_sessions(now)
        memberships = await self._hs.rooms.get_memberships_of_user(user_id)
        requester = _Requester(user_id, {r: m for r, (m, _) in memberships.items()})

        if from_token is not None:
            session = self._sessions.get(from_token)
            if session is None or session.user_id != user_id or session.room_id != room_id:
                raise invalid_param("Unknown pagination token 'from'")
            if session.suggested_only != suggested_only or session.max_depth != max_depth:
                raise invalid_param("suggested_only and max_depth cannot change on paginated requests")
            queue, processed = list(session.queue), set(session.processed)
        else:
            root = (await self._store.room_summaries([room_id])).get(room_id)
            if root is None or not await self._may_see(requester, root):
                raise _forbidden()
            queue, processed = [_Queued(room_id, 0)], set()

        rooms: list[dict[str, Any]] = []
        while queue and len(rooms) < limit:
            entry = queue.pop()
            if entry.room_id in processed:
                continue
            processed.add(entry.room_id)
            summary = (await self._store.room_summaries([entry.room_id])).get(entry.room_id)
            if summary is None or not await self._may_see(requester, summary):
                continue  # unknown here, or not for this user: nor what is below it
            children: list[ChildLink] = []
            if summary.room_type == "m.space":
                children = await self._store.space_children(entry.room_id)
                if suggested_only:
                    children = [c for c in children if c.suggested]
            rooms.append(self._entry(summary, children))
            if entry.depth < max_depth:
                # Reversed onto a stack: the first child is walked (with its subtree) first.
                queue.extend(_Queued(c.room_id, entry.depth + 1) for c in reversed(children)
                             if c.room_id not in processed)

        body: dict[str, Any] = {"rooms": rooms}
        if queue:
            token = secrets.token_urlsafe(16)
            self._sessions[token] = _Session(user_id, room_id, suggested_only, max_depth, queue, processed, now)
            body["next_batch"] = token
        return body

    @staticmethod
    def _entry(summary: RoomSummary, children: list[ChildLink]) -> dict[str, Any]:
        body = summary.chunk()
        body["room_version"] = summary.room_version
        if summary.encryption is not None:
            body["encryption"] = summary.encryption
        if summary.join_rule in ("restricted", "knock_restricted"):
            body["allowed_room_ids"] = summary.allowed_room_ids
        body["children_state"] = [c.stripped() for c in children]
        return body

    async def _may_see(self, requester: _Requester, summary: RoomSummary) -> bool:
        membership = requester.memberships.get(summary.room_id)
        if membership in ("join", "invite"):
            return True
        if membership == "ban":
            return False
        join_rule = summary.join_rule
        if join_rule in ("public", "knock", "knock_restricted") or summary.world_readable:
            return True
        if join_rule in ("restricted", "knock_restricted"):
            return any(requester.memberships.get(r) == "join" for r in summary.allowed_room_ids)
        return False
