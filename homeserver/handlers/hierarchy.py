"""The space hierarchy: ``GET /_matrix/client/v1/rooms/{roomId}/hierarchy``.

Walks ``m.space.child`` state events (only those with a non-empty ``via`` list) depth
first, as the specification and Synapse do: a space's children are visited in the
specification's order (``order``, then timestamp, then room ID), each child's subtree
before the next child. Rooms the requester may not see are left out together with
what lies below them; a room may be seen when the requester is joined or invited, the
join rule is public or knockable, the history is world readable, or the join rule is
restricted to a room the requester is joined to. Loops and repeats are visited once.

Children this server does not know are asked of the servers in their ``via`` with
federation ``/hierarchy`` (when federation is enabled), and the answers kept for a few
minutes: the room itself with its children, and the summaries of those children. The
same visibility rules apply to them, judged from the summary the other server gave
(it already left out what our server may not see). Without federation, or when no
server answers, they are skipped. A page that ends before the walk does answers ``next_batch``; the walk's
remaining queue is kept in memory under that token for a while, bound to the
requester, the room and the ``suggested_only``/``max_depth`` it started with.

Other servers ask with ``GET /_matrix/federation/v1/hierarchy/{roomId}``
(``federation_hierarchy``): the room with its ``children_state``, and its direct
children this server knows, split into those the asking server may see and
``inaccessible_children``. A server may see a room that is public, knockable or world
readable, that one of its users is joined or invited to, or whose restricted join rule
names a room one of its users is joined to.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from twisted.logger import Logger

from homeserver.events.received import server_name_of
from homeserver.http.errors import MatrixError, invalid_param, not_found
from storage.cache import LruCache
from storage.stores.directory import ChildLink, DirectoryStore, RoomSummary

log = Logger(namespace="drocsid.hierarchy")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DEFAULT_MAX_DEPTH = 50
MAX_MAX_DEPTH = 100
SESSION_LIFETIME_MS = 5 * 60 * 1000
MAX_SESSIONS = 10000


def _forbidden() -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", "You are not allowed to view this room.")


REMOTE_CACHE_MS = 5 * 60 * 1000
REMOTE_CACHE_SIZE = 5000
REMOTE_TIMEOUT_S = 15.0
MAX_REMOTE_SERVERS = 3


@dataclass
class _Queued:
    room_id: str
    depth: int
    via: tuple[str, ...] = ()


@dataclass
class _RemoteRoom:
    """A room of another server's /hierarchy answer: its summary (client chunk fields)
    and, when it was the room asked about, its children (None: not known)."""
    entry: dict[str, Any]
    children: list[ChildLink] | None
    fetched_ms: int

    @property
    def join_rule(self) -> str | None:
        value = self.entry.get("join_rule")
        return value if isinstance(value, str) else None

    @property
    def allowed_room_ids(self) -> list[str]:
        value = self.entry.get("allowed_room_ids")
        return [r for r in value if isinstance(r, str)] if isinstance(value, list) else []


def _child_links(children_state: Any) -> list[ChildLink]:
    links = []
    for event in children_state if isinstance(children_state, list) else []:
        if not isinstance(event, dict) or event.get("type") != "m.space.child":
            continue
        room_id, content = event.get("state_key"), event.get("content")
        ts = event.get("origin_server_ts")
        if not isinstance(room_id, str) or not isinstance(content, dict):
            continue
        link = ChildLink(room_id, event.get("sender") if isinstance(event.get("sender"), str) else "",
                         ts if isinstance(ts, int) and not isinstance(ts, bool) else 0, content)
        if link.valid:
            links.append(link)
    links.sort(key=lambda c: c.sort_key())
    return links


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
        # (room_id, suggested_only) -> what another server said of the room.
        self._remote: LruCache[tuple[str, bool], _RemoteRoom] = LruCache(REMOTE_CACHE_SIZE)

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
            children: list[ChildLink] = []
            if summary is None:
                remote = await self._remote_room(entry, suggested_only)
                if remote is None or not self._may_see_remote(requester, entry.room_id, remote):
                    continue  # unknown, or not for this user: nor what is below it
                children = remote.children or []
                if suggested_only:
                    children = [c for c in children if c.suggested]
                rooms.append({**remote.entry, "children_state": [c.stripped() for c in children]})
            else:
                if not await self._may_see(requester, summary):
                    continue  # not for this user: nor what is below it
                if summary.room_type == "m.space":
                    children = await self._store.space_children(entry.room_id)
                    if suggested_only:
                        children = [c for c in children if c.suggested]
                rooms.append(self._entry(summary, children))
            if entry.depth < max_depth:
                # Reversed onto a stack: the first child is walked (with its subtree) first.
                queue.extend(_Queued(c.room_id, entry.depth + 1, tuple(c.content.get("via", ())))
                             for c in reversed(children) if c.room_id not in processed)

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

    # -- rooms of other servers --------------------------------------------------------------

    async def _remote_room(self, entry: _Queued, suggested_only: bool) -> _RemoteRoom | None:
        """What another server says of a room we do not know (cached), with its
        children when it is a space."""
        client = getattr(self._hs, "federation_client", None)
        if client is None:
            return None
        now = self._hs.clock.time_ms()
        for key in ((entry.room_id, suggested_only), (entry.room_id, not suggested_only)):
            cached = self._remote.get(key)
            if cached is not None and now - cached.fetched_ms > REMOTE_CACHE_MS:
                self._remote.pop(key)
                cached = None
            if cached is None:
                continue
            # A summary from a parent's answer has no children: enough unless a space.
            if cached.children is not None and key[1] == suggested_only:
                return cached
            if cached.children is None and cached.entry.get("room_type") != "m.space":
                return _RemoteRoom(cached.entry, [], cached.fetched_ms)
        our_name = self._hs.config.server_name
        servers = [s for s in dict.fromkeys(entry.via) if isinstance(s, str) and s and s != our_name]
        for server in servers[:MAX_REMOTE_SERVERS]:
            try:
                answer = await client.get_json(
                    server, "/_matrix/federation/v1/hierarchy/" + quote(entry.room_id, safe=""),
                    query={"suggested_only": suggested_only}, timeout=REMOTE_TIMEOUT_S)
            except Exception as error:
                log.info("hierarchy of {room_id} from {server} failed: {error}", room_id=entry.room_id,
                         server=server, error=str(error))
                continue
            room = answer.get("room")
            if not isinstance(room, dict) or room.get("room_id") != entry.room_id:
                continue
            found = _RemoteRoom(self._chunk(room), _child_links(room.get("children_state")), now)
            self._remote.set((entry.room_id, suggested_only), found)
            for child in answer.get("children") or []:
                if isinstance(child, dict) and isinstance(child.get("room_id"), str) \
                        and (child["room_id"], suggested_only) not in self._remote:
                    self._remote.set((child["room_id"], suggested_only), _RemoteRoom(self._chunk(child), None, now))
            return found
        return None

    @staticmethod
    def _chunk(room: dict[str, Any]) -> dict[str, Any]:
        entry = {k: v for k, v in room.items() if k != "children_state"}
        entry.setdefault("num_joined_members", 0)
        entry.setdefault("world_readable", False)
        entry.setdefault("guest_can_join", False)
        return entry

    @staticmethod
    def _may_see_remote(requester: _Requester, room_id: str, room: _RemoteRoom) -> bool:
        membership = requester.memberships.get(room_id)
        if membership in ("join", "invite"):
            return True
        if membership == "ban":
            return False
        if room.join_rule in ("public", "knock", "knock_restricted") or room.entry.get("world_readable") is True:
            return True
        if room.join_rule in ("restricted", "knock_restricted"):
            return any(requester.memberships.get(r) == "join" for r in room.allowed_room_ids)
        return False

    # -- other servers ----------------------------------------------------------------------

    async def federation_hierarchy(self, origin: str, room_id: str, suggested_only: bool = False) -> dict[str, Any]:
        root = (await self._store.room_summaries([room_id])).get(room_id)
        if root is None:
            raise not_found("Unknown room")
        if not await self._server_may_see(origin, root):
            raise _forbidden()
        children: list[ChildLink] = []
        if root.room_type == "m.space":
            children = await self._store.space_children(room_id)
            if suggested_only:
                children = [c for c in children if c.suggested]
        child_ids = list(dict.fromkeys(c.room_id for c in children if c.room_id != room_id))
        summaries = await self._store.room_summaries(child_ids) if child_ids else {}
        accessible: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for child_id in child_ids:
            summary = summaries.get(child_id)
            if summary is None:
                continue  # not known here
            if await self._server_may_see(origin, summary):
                entry = self._entry(summary, [])
                del entry["children_state"]
                accessible.append(entry)
            else:
                inaccessible.append(child_id)
        return {"room": self._entry(root, children), "children": accessible, "inaccessible_children": inaccessible}

    async def _server_may_see(self, origin: str, summary: RoomSummary) -> bool:
        if summary.join_rule in ("public", "knock", "knock_restricted") or summary.world_readable:
            return True
        if await self._server_has_member(origin, summary.room_id, ("join", "invite")):
            return True
        if summary.join_rule in ("restricted", "knock_restricted"):
            for allowed in summary.allowed_room_ids:
                if await self._server_has_member(origin, allowed, ("join",)):
                    return True
        return False

    async def _server_has_member(self, server: str, room_id: str, memberships: tuple[str, ...]) -> bool:
        members = await self._hs.rooms.get_members(room_id)
        return any(m in memberships and server_name_of(user_id) == server for user_id, (m, _) in members.items())

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
