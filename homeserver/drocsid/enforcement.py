"""Drocsid permissions on every path into a server's rooms.

The Matrix client API, ``/api/v1`` and federation all end in the event sender (our
events) or the event ingester (received ones); both ask ``DrocsidRules.check`` after
the Matrix auth rules pass. A local event that fails is refused with 403; a received
one is soft-failed: kept in the DAG, never shown, never built upon (DESIGN.md §2).

The answer depends on the state before the event in its room and on the server
space's current state (roles, members' roles, channel links). A message send must stay
cheap, so what is derived from a state map is cached per room and reused for as long
as the room's head keeps the same state map (heads replace the map on every state
change, so identity is the version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.event_rules import DELETED_EVENT, EventFacts, ServerFacts, check_event
from homeserver.events.event import Event

SPACE_TYPE = "m.space"
_CREATE = ("m.room.create", "")
_EVERYONE_ROLE = (perms.ROLE_EVENT, perms.EVERYONE)


@dataclass
class _RoomShape:
    """What one state map says about Drocsid, before loading any content."""
    state: Mapping                 # the map this was derived from (identity = version)
    parents: list[str]             # m.space.parent state keys
    children: list[str]            # m.space.child state keys
    overwrite_ids: dict[str, str]  # overwrite state_key -> event ID
    role_ids: dict[str, str]       # role state_key -> event ID (server spaces)
    deleted: bool


@dataclass
class _ServerCache:
    state: Mapping
    facts_base: tuple[str, dict[str, perms.Role]] | None  # (owner, roles), None: not a server
    children: dict[str, bool]      # child room ID -> linked with a non-empty via


class _Events:
    """Events by ID, queued ones included (a head moves on before its events are written)."""

    def __init__(self, writer):
        self._writer = writer

    async def get_events(self, event_ids) -> dict:
        return await self._writer.get_events(event_ids)

    async def get_event(self, event_id):
        return (await self._writer.get_events([event_id])).get(event_id)


class DrocsidRules:
    def __init__(self, room_heads, room_writer):
        self._heads = room_heads
        self._events = _Events(room_writer)
        self._shapes: dict[str, _RoomShape] = {}
        self._servers: dict[str, _ServerCache] = {}

    async def check(self, room_id: str, state_before: Mapping, event: Event) -> str | None:
        """None when Drocsid permissions allow ``event``; else the reason they do not.
        Rooms that are not part of a Drocsid server are not concerned."""
        shape = self._shape(room_id, state_before)
        if _EVERYONE_ROLE in state_before and not shape.deleted:
            server = await self._server(room_id, state_before)
            if server is not None:
                return await self._check(server, state_before, event, None)
            return None
        for parent_id in shape.parents:
            found = await self._channel_context(parent_id, room_id, shape)
            if found is not None:
                server_cache, overwrites = found
                return await self._check(server_cache, state_before, event, overwrites)
        return None

    # --- deriving, with caches ------------------------------------------------------

    def _shape(self, room_id: str, state: Mapping) -> _RoomShape:
        cached = self._shapes.get(room_id)
        if cached is not None and cached.state is state:
            return cached
        parents, children, overwrites, roles = [], [], {}, {}
        deleted = False
        for (event_type, state_key), event_id in state.items():
            if event_type == "m.space.parent":
                parents.append(state_key)
            elif event_type == "m.space.child":
                children.append(state_key)
            elif event_type == perms.OVERWRITE_EVENT:
                overwrites[state_key] = event_id
            elif event_type == perms.ROLE_EVENT:
                roles[state_key] = event_id
            elif event_type == DELETED_EVENT:
                deleted = True
        shape = _RoomShape(state, sorted(parents), sorted(children), overwrites, roles, deleted)
        self._shapes[room_id] = shape
        return shape

    async def _server(self, space_id: str, state: Mapping) -> _ServerCache | None:
        cached = self._servers.get(space_id)
        if cached is not None and cached.state is state:
            return cached if cached.facts_base is not None else None
        shape = self._shape(space_id, state)
        wanted = [state[_CREATE]] if _CREATE in state else []
        wanted += list(shape.role_ids.values()) + [state[("m.space.child", c)] for c in shape.children]
        loaded = await self._events.get_events(wanted)
        complete = len(loaded) == len(set(wanted))
        create = loaded.get(state.get(_CREATE))
        facts_base = None
        if create is not None and create.content.get("type") == SPACE_TYPE and not shape.deleted \
                and _EVERYONE_ROLE in state:
            roles = perms.roles_from_state({k: loaded[e].content for k, e in shape.role_ids.items() if e in loaded})
            facts_base = (create.sender, roles)
        children = {}
        for child in shape.children:
            link = loaded.get(state[("m.space.child", child)])
            via = link.content.get("via") if link is not None else None
            children[child] = isinstance(via, list) and bool(via)
        cached = _ServerCache(state, facts_base, children)
        if complete:
            self._servers[space_id] = cached
        return cached if facts_base is not None else None

    async def _channel_context(self, server_id: str, channel_id: str, shape: _RoomShape):
        """(server, overwrites the channel follows) if the server links the channel,
        directly or through one of its categories; None otherwise."""
        server_head = await self._heads.get(server_id)
        if server_head is None:
            return None
        server = await self._server(server_id, server_head.state)
        if server is None:
            return None
        overwrites = await self._overwrites(shape)
        if server.children.get(channel_id):
            return server, overwrites
        for category_id, linked in server.children.items():
            if not linked:
                continue
            category_head = await self._heads.get(category_id)
            if category_head is None:
                continue
            category_shape = self._shape(category_id, category_head.state)
            if channel_id not in category_shape.children:
                continue
            link = await self._events.get_event(category_head.state[("m.space.child", channel_id)])
            if link is None or not link.content.get("via"):
                continue
            # A channel without overwrites of its own follows its category.
            return server, overwrites or await self._overwrites(category_shape)
        return None

    async def _overwrites(self, shape: _RoomShape) -> dict[str, perms.Overwrite]:
        if not shape.overwrite_ids:
            return {}
        loaded = await self._events.get_events(list(shape.overwrite_ids.values()))
        return perms.overwrites_from_state({k: loaded[e].content for k, e in shape.overwrite_ids.items()
                                            if e in loaded})

    # --- the check ------------------------------------------------------------------

    async def _check(self, server: _ServerCache, state_before: Mapping, event: Event,
                     overwrites: dict | None) -> str | None:
        owner_id, roles = server.facts_base
        if event.sender == owner_id:
            return None
        users = {event.sender}
        target = event.state_key if event.type == "m.room.member" else None
        if target:
            users.add(target)
        member_roles = await self._member_roles(server.state, users)
        prior_content = None
        if event.state_key is not None and (event.type, event.state_key) in state_before:
            prior = await self._events.get_event(state_before[(event.type, event.state_key)])
            prior_content = prior.content if prior is not None else None
        redacted_sender = None
        if event.type == "m.room.redaction":
            redacts = event.redacts
            target_event = await self._events.get_event(redacts) if isinstance(redacts, str) else None
            redacted_sender = target_event.sender if target_event is not None else None
        facts = EventFacts(event.type, event.sender, event.content, event.state_key, prior_content, redacted_sender)
        return check_event(ServerFacts(owner_id, roles, member_roles), facts, overwrites)

    async def _member_roles(self, server_state: Mapping, users: set[str]) -> dict[str, tuple[str, ...]]:
        keys = {u: server_state.get((perms.MEMBER_EVENT, perms.member_state_key(u))) for u in users}
        loaded = await self._events.get_events([e for e in keys.values() if e])
        return {u: perms.parse_member_roles(u, loaded[e].content).role_ids
                for u, e in keys.items() if e and e in loaded}
