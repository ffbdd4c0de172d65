"""Membership changes: join, leave, invite, kick, ban, unban, forget.

Each is one m.room.member event that the auth rules judge; this module decides which
event a request means and gives the answer a client expects when nothing would change.
"""

from __future__ import annotations

from homeserver.events.event import Event
from homeserver.handlers.event_sender import EventSender
from homeserver.handlers.room_heads import RoomHeads
from homeserver.http.errors import MatrixError, forbidden, not_found
from storage.stores.events import EventStore
from storage.stores.rooms import RoomStore


class MembershipHandler:
    def __init__(self, server_name: str, sender: EventSender, heads: RoomHeads, events: EventStore,
                 rooms: RoomStore, profiles):
        self._server_name = server_name
        self._profiles = profiles
        self._sender = sender
        self._heads = heads
        self._events = events
        self._rooms = rooms

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
        if room_id_or_alias.startswith("#"):
            found = await self._rooms.get_alias(room_id_or_alias)
            if found is None:
                raise not_found(f"Room alias {room_id_or_alias} not found")
            return found[0]
        if not room_id_or_alias.startswith("!"):
            raise MatrixError(400, "M_INVALID_PARAM", "Expected a room ID or alias")
        return room_id_or_alias

    async def _require_room(self, room_id: str) -> None:
        if await self._heads.get(room_id) is None:
            # Rooms on other servers need federation, which this server does not do yet.
            raise not_found("Unknown room")

    async def _change(self, sender: str, room_id: str, target: str, membership: str, reason: str | None,
                      extra: dict | None = None, client_txn=None) -> Event:
        content: dict = {"membership": membership, **(extra or {})}
        if reason:
            content["reason"] = reason
        return await self._sender.send(sender, room_id, "m.room.member", content, state_key=target,
                                       client_txn=client_txn)

    async def join(self, user_id: str, room_id_or_alias: str, reason: str | None = None) -> str:
        room_id = await self.resolve_room(room_id_or_alias)
        await self._require_room(room_id)
        if await self.current_membership(room_id, user_id) == "join":
            return room_id  # joining again changes nothing
        await self._change(user_id, room_id, user_id, "join", reason, await self._profiles.member_content(user_id))
        await self._rooms.unforget(user_id, room_id)
        return room_id

    async def knock(self, user_id: str, room_id_or_alias: str, reason: str | None = None) -> str:
        """Ask to be let in to a room whose join rule is knock (or knock_restricted)."""
        room_id = await self.resolve_room(room_id_or_alias)
        await self._require_room(room_id)
        if await self.current_membership(room_id, user_id) == "knock":
            return room_id
        await self._change(user_id, room_id, user_id, "knock", reason, await self._profiles.member_content(user_id))
        return room_id

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        await self._require_room(room_id)
        current = await self.current_membership(room_id, user_id)
        if current in (None, "leave"):
            return  # already out: nothing to send
        if current == "ban":
            raise forbidden("You are banned from this room")
        await self._change(user_id, room_id, user_id, "leave", reason)

    async def invite(self, sender: str, room_id: str, target: str, reason: str | None = None) -> None:
        await self._require_room(room_id)
        if not target.endswith(":" + self._server_name):
            raise forbidden("Inviting users of other servers needs federation, which is not enabled")
        if await self.current_membership(room_id, target) == "invite":
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
