"""Membership changes: join, leave, invite, kick, ban, unban, forget.

Each is one m.room.member event that the auth rules judge; this module decides which
event a request means and gives the answer a client expects when nothing would change.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.events.auth_events import AUTHORISING_USER
from homeserver.events.auth_rules import (CREATE_KEY, JOIN_RULES_KEY, POWER_LEVELS_KEY, membership_of,
                                          power_level_for, user_power_level)
from homeserver.events.event import Event
from homeserver.handlers.event_sender import EventSender
from homeserver.handlers.room_heads import RoomHeads
from homeserver.http.errors import MatrixError, forbidden, not_found
from storage.stores.events import EventStore
from storage.stores.rooms import RoomStore


@dataclass(frozen=True)
class RestrictedJoin:
    rule: str  # restricted or knock_restricted
    in_allowed_room: bool
    authoriser: str | None  # a joined local user who may invite, when there is one


class MembershipHandler:
    def __init__(self, server_name: str, sender: EventSender, heads: RoomHeads, events: EventStore,
                 rooms: RoomStore, profiles):
        self._server_name = server_name
        self._profiles = profiles
        self._sender = sender
        self._heads = heads
        self._events = events
        self._rooms = rooms
        # Joins, knocks and invites across servers (federation.remote_membership), when enabled.
        self.remote = None
        # async (alias) -> bool: an application service created the alias (appservice.queries).
        self.alias_query = None

    async def current_membership(self, room_id: str, user_id: str) -> str | None:
        head = await self._heads.get(room_id)
        if head is None:
            return None
        event_id = head.state.get(("m.room.member", user_id))
        if event_id is None:
            return None
        event = await self._events.get_event(event_id)
        return event.membership if event is not None else None

    async def resolve_room(self, room_id_or_alias: str) -> str:
        room_id, _servers = await self.resolve_room_and_servers(room_id_or_alias)
        return room_id

    async def resolve_room_and_servers(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """The room an ID or alias names, and servers that know it (for aliases elsewhere)."""
        if room_id_or_alias.startswith("#"):
            found = await self._rooms.get_alias(room_id_or_alias)
            if found is None and self.alias_query is not None and await self.alias_query(room_id_or_alias):
                found = await self._rooms.get_alias(room_id_or_alias)
            if found is not None:
                return found[0], []
            server = room_id_or_alias.split(":", 1)[1] if ":" in room_id_or_alias else ""
            if self.remote is not None and server and server != self._server_name:
                return await self.remote.resolve_alias(room_id_or_alias)
            raise not_found(f"Room alias {room_id_or_alias} not found")
        if not room_id_or_alias.startswith("!"):
            raise MatrixError(400, "M_INVALID_PARAM", "Expected a room ID or alias")
        return room_id_or_alias, []

    async def server_in_room(self, room_id: str) -> bool:
        """Whether one of our users is joined, so that events can be built here."""
        head = await self._heads.get(room_id)
        if head is None or not head.extremities:
            return False
        suffix = ":" + self._server_name
        members = [v for (t, k), v in head.state.items() if t == "m.room.member" and k.endswith(suffix)]
        loaded = await self._events.get_events(members)
        return any(e.membership == "join" for e in loaded.values())

    async def _require_room(self, room_id: str) -> None:
        head = await self._heads.get(room_id)
        if head is None or not head.extremities:
            raise not_found("Unknown room")

    async def _remote_servers(self, room_id: str, user_id: str, via: list[str]) -> list[str]:
        """Where to knock or join: the servers given, the inviter's, the room ID's."""
        extra = []
        head = await self._heads.get(room_id)
        member_id = head.state.get(("m.room.member", user_id)) if head is not None else None
        member = await self._events.get_event(member_id) if member_id else None
        if member is not None and member.sender != user_id:
            extra.append(member.sender.split(":", 1)[1])
        if head is not None:
            extra += sorted({k.split(":", 1)[1] for (t, k) in head.state if t == "m.room.member" and ":" in k})
        return self.remote.candidate_servers(room_id, via, extra)

    async def _change(self, sender: str, room_id: str, target: str, membership: str, reason: str | None,
                      extra: dict | None = None, client_txn=None) -> Event:
        content: dict = {"membership": membership, **(extra or {})}
        if reason:
            content["reason"] = reason
        return await self._sender.send(sender, room_id, "m.room.member", content, state_key=target,
                                       client_txn=client_txn)

    async def join(self, user_id: str, room_id_or_alias: str, reason: str | None = None,
                   servers: list[str] | None = None) -> str:
        room_id, alias_servers = await self.resolve_room_and_servers(room_id_or_alias)
        if await self.current_membership(room_id, user_id) == "join" and await self.server_in_room(room_id):
            return room_id  # joining again changes nothing
        content = await self._profiles.member_content(user_id)
        if reason:
            content["reason"] = reason
        if not await self.server_in_room(room_id) and self.remote is not None:
            via = await self._remote_servers(room_id, user_id, list(servers or []) + alias_servers)
            if via:
                await self.remote.join(user_id, room_id, via, content)
                await self._rooms.unforget(user_id, room_id)
                return room_id
        await self._require_room(room_id)
        content = await self._profiles.member_content(user_id)
        restricted = await self.restricted_join(room_id, user_id)
        if restricted is not None and restricted.authoriser is not None:
            content[AUTHORISING_USER] = restricted.authoriser
        await self._change(user_id, room_id, user_id, "join", reason, content)
        await self._rooms.unforget(user_id, room_id)
        return room_id

    async def restricted_join(self, room_id: str, user_id: str) -> RestrictedJoin | None:
        """How a join to a restricted room stands: whether the user is in one of the rooms
        its rule allows and, if so, a joined local user who may invite to name in the join
        (``join_authorised_via_users_server``). None when the room is not restricted or
        the user is already invited or joined."""
        head = await self._heads.get(room_id)
        rules_id = head.state.get(JOIN_RULES_KEY) if head is not None else None
        rules = await self._events.get_event(rules_id) if rules_id else None
        rule = rules.content.get("join_rule") if rules is not None else None
        if rule not in ("restricted", "knock_restricted"):
            return None
        if await self.current_membership(room_id, user_id) in ("invite", "join"):
            return None
        allow = rules.content.get("allow")
        allowed = [a["room_id"] for a in (allow if isinstance(allow, list) else [])
                   if isinstance(a, dict) and a.get("type") == "m.room_membership"
                   and isinstance(a.get("room_id"), str)]
        if not [r for r in allowed if await self.current_membership(r, user_id) == "join"]:
            return RestrictedJoin(rule, False, None)
        suffix = ":" + self._server_name
        keys = [k for k in head.state if k in (CREATE_KEY, POWER_LEVELS_KEY)
                or (k[0] == "m.room.member" and k[1].endswith(suffix))]
        loaded = await self._events.get_events([head.state[k] for k in keys])
        state = {k: loaded[head.state[k]] for k in keys if head.state[k] in loaded}
        needed = power_level_for(state, "invite")
        for event_type, member in sorted(state):
            if event_type == "m.room.member" and membership_of(state, member) == "join" \
                    and user_power_level(head.version, state, member) >= needed:
                return RestrictedJoin(rule, True, member)
        return RestrictedJoin(rule, True, None)

    async def knock(self, user_id: str, room_id_or_alias: str, reason: str | None = None,
                    servers: list[str] | None = None) -> str:
        """Ask to be let in to a room whose join rule is knock (or knock_restricted)."""
        room_id, alias_servers = await self.resolve_room_and_servers(room_id_or_alias)
        if await self.current_membership(room_id, user_id) == "knock":
            return room_id
        if not await self.server_in_room(room_id) and self.remote is not None:
            via = await self._remote_servers(room_id, user_id, list(servers or []) + alias_servers)
            if via:
                content = await self._profiles.member_content(user_id)
                if reason:
                    content["reason"] = reason
                await self.remote.leave_or_knock("knock", user_id, room_id, via, content)
                return room_id
        await self._require_room(room_id)
        await self._change(user_id, room_id, user_id, "knock", reason, await self._profiles.member_content(user_id))
        return room_id

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        if await self._heads.get(room_id) is None:
            raise not_found("Unknown room")
        current = await self.current_membership(room_id, user_id)
        if current in (None, "leave"):
            return  # already out: nothing to send
        if current == "ban":
            raise forbidden("You are banned from this room")
        if self.remote is not None and not await self.server_in_room(room_id):
            # Declining an invite (or withdrawing a knock) to a room we are not in.
            via = await self._remote_servers(room_id, user_id, [])
            await self.remote.leave_or_knock("leave", user_id, room_id, via, {"reason": reason} if reason else {})
            return
        await self._change(user_id, room_id, user_id, "leave", reason)

    async def invite(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._require_room(room_id)
        if await self.current_membership(room_id, target) == "invite":
            return
        if not target.endswith(":" + self._server_name):
            if self.remote is None:
                raise forbidden("Inviting users of other servers needs federation, which is not enabled")
            content: dict = {"membership": "invite"}
            if reason:
                content["reason"] = reason
            await self.remote.invite(sender, room_id, target, content)
            return
        await self._change(sender, room_id, target, "invite", reason, await self._profiles.member_content(target))

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._require_room(room_id)
        current = await self.current_membership(room_id, target)
        if current not in ("join", "invite", "knock"):
            raise forbidden("The user is not in the room")
        await self._change(sender, room_id, target, "leave", reason)

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._require_room(room_id)
        await self._change(sender, room_id, target, "ban", reason)

    async def unban(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._require_room(room_id)
        if await self.current_membership(room_id, target) != "ban":
            raise forbidden("The user is not banned")
        await self._change(sender, room_id, target, "leave", reason)

    async def forget(self, user_id: str, room_id: str) -> None:
        current = await self.current_membership(room_id, user_id)
        if current in ("join", "invite", "knock"):
            raise MatrixError(400, "M_UNKNOWN", "Leave the room before forgetting it")
        if current is None and await self._heads.get(room_id) is None:
            raise not_found("Unknown room")
        await self._rooms.forget(user_id, room_id)
