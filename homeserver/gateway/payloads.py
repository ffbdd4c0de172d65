"""What the gateway dispatches: events, typing, presence and receipts turned into
``(name, payload, audience)``, payloads in the ``/api/v1`` shapes.

The audience is a set of user IDs, already restricted to who may see the dispatch: a
channel's events go to the server members who may VIEW_CHANNEL in it, server-wide events
to the server's members, other rooms' (DMs') events to their joined members.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.api.users import iso_timestamp
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.dms import get_dm
from homeserver.drocsid.messages import Messages
from homeserver.drocsid.presence import from_matrix_presence
from homeserver.drocsid.relationships import list_relationships
from homeserver.drocsid.server_state import Server
from homeserver.drocsid.voice_rules import VOICE_STATE_EVENT
from homeserver.drocsid.webhooks import webhook_id_of
from homeserver.gateway.contexts import RoomContext, RoomContexts
from homeserver.voice.service import voice_state_json
from homeserver.http.errors import MatrixError

# Account data whose change is a RELATIONSHIP_UPDATE (homeserver.drocsid.relationships).
RELATIONSHIP_TYPES = frozenset({"io.drocsid.relationships", "m.ignored_user_list"})


@dataclass(frozen=True)
class Dispatch:
    name: str
    payload: dict
    users: frozenset[str]
    durable: bool = True  # stored and replayed on RESUME (typing is not)


# -- shapes ------------------------------------------------------------------------

def role_json(server_id: str, role: perms.Role) -> dict:
    return {"id": role.role_id, "server_id": server_id, "name": role.name, "color": role.color,
            "hoist": role.hoist, "position": role.position, "permissions": perms.format_permissions(role.permissions),
            "mentionable": role.mentionable}


def server_json(server: Server, user_id: str) -> dict:
    """A server as GET /servers/{id} shows it to the user, with its roles."""
    body = server.to_json(user_id, with_channels=True)
    body["roles"] = [role_json(server.room_id, r) for r in
                     sorted(server.roles.values(), key=lambda r: (r.position, r.role_id))]
    return body


def overrides_json(channel) -> list[dict]:
    return [{"id": o.target_id, "type": o.kind, "allow": perms.format_permissions(o.allow),
             "deny": perms.format_permissions(o.deny)} for o in
            sorted(channel.overwrites.values(), key=lambda o: (o.kind, o.target_id))]


class _MessageObjects(Messages):
    """``Messages.objects`` for any room, permissions not needed (the audience is decided)."""

    def __init__(self, hs, room_id: str, user_id: str):
        self.hs = hs
        self.room_id = room_id
        self.user_id = user_id


def _relation(event) -> dict:
    relates = event.content.get("m.relates_to")
    return relates if isinstance(relates, dict) else {}


class Translator:
    def __init__(self, hs, contexts: RoomContexts):
        self._hs = hs
        self._contexts = contexts
        self._relationships: dict[str, dict[str, str]] = {}

    # -- room events ------------------------------------------------------------

    def note_state(self, event) -> None:
        """A state event nobody is listening for: only the cached contexts move on."""
        if not event.rejected:
            self._contexts.on_state_event(event)

    async def event(self, event, wanted) -> list[Dispatch]:
        """Dispatches for a new room event; ``wanted(users)`` says whether anyone of
        ``users`` is connected (payloads are only built for someone)."""
        if event.rejected or getattr(event, "soft_failed", False):
            return []
        before = await self._contexts.resolve(event.room_id)
        if not event.is_state():
            return await self._timeline(event, before, wanted)
        self._contexts.on_state_event(event)
        after = await self._contexts.resolve(event.room_id)
        out = await self._state(event, before, after, wanted)
        out += self._visibility(before, after)
        return out

    def _audience(self, context: RoomContext) -> frozenset[str]:
        if context.is_channel:
            return self._contexts.viewers(context.server, context.channel)
        if context.is_server:
            return frozenset(context.server.members)
        return context.members

    async def _message(self, room_id: str, viewer: str, event) -> dict:
        return (await _MessageObjects(self._hs, room_id, viewer).objects([event]))[0]

    def _ids(self, context: RoomContext) -> dict:
        ids = {"channel_id": context.room_id}
        if context.server is not None:
            ids["server_id"] = context.server.room_id
        return ids

    async def _timeline(self, event, context: RoomContext, wanted) -> list[Dispatch]:
        if context.is_server:
            return []  # a space has no messages
        users = self._audience(context)
        if not wanted(users):
            return []
        ids = self._ids(context)
        if event.type == "m.room.message":
            relation = _relation(event)
            if relation.get("rel_type") == "m.replace":
                target = await self._hs.events.get_event(relation.get("event_id") or "")
                if target is None or target.room_id != event.room_id or target.sender != event.sender:
                    return []
                return [Dispatch("MESSAGE_UPDATE", await self._message(event.room_id, event.sender, target), users)]
            return [Dispatch("MESSAGE_CREATE", await self._message(event.room_id, event.sender, event), users)]
        if event.type == "m.reaction":
            relation = _relation(event)
            if relation.get("rel_type") != "m.annotation" or not isinstance(relation.get("key"), str):
                return []
            return [Dispatch("REACTION_ADD", {**ids, "message_id": relation.get("event_id"), "user_id": event.sender,
                                              "emoji": relation["key"]}, users)]
        if event.type == "m.room.redaction" and event.redacts:
            target = await self._hs.events.get_event(event.redacts)
            if target is None or target.room_id != event.room_id:
                return []
            if target.type == "m.reaction":
                relation = _relation(target)
                return [Dispatch("REACTION_REMOVE", {**ids, "message_id": relation.get("event_id"),
                                                     "user_id": target.sender, "emoji": relation.get("key")}, users)]
            if target.type == "m.room.message" and _relation(target).get("rel_type") != "m.replace":
                return [Dispatch("MESSAGE_DELETE", {**ids, "id": target.event_id}, users)]
        return []

    async def _state(self, event, before: RoomContext, after: RoomContext, wanted) -> list[Dispatch]:
        kind, key, content = event.type, event.state_key or "", event.content
        if before.is_server or after.is_server:
            server = after.server if after.is_server else None
            old = before.server if before.is_server else None
            members = frozenset(server.members) if server is not None else frozenset()
            old_members = frozenset(old.members) if old is not None else frozenset()
            if kind == "io.drocsid.deleted" or (server is None and old is not None):
                users = old_members | members
                return [Dispatch("SERVER_DELETE", {"id": event.room_id}, users)] if wanted(users) else []
            if server is None or not wanted(members | old_members | {key}):
                return []
            sid = server.room_id
            if old is None:
                # The space has just become a server (its @everyone role arrived).
                return [Dispatch("SERVER_CREATE", server_json(server, user_id), frozenset({user_id}))
                        for user_id in sorted(members) if wanted({user_id})]
            if kind in ("m.room.name", "m.room.topic", "m.room.avatar"):
                return [Dispatch("SERVER_UPDATE", server.to_json(), members)]
            if kind == "m.room.member":
                user = {"id": key, "display_name": content.get("displayname") if isinstance(
                    content.get("displayname"), str) else None}
                if event.membership == "join" and (old is None or not old.is_member(key)):
                    return [Dispatch("SERVER_MEMBER_ADD", {"server_id": sid, "user": user,
                                                           "role_ids": list(server.member_roles.get(key, ())),
                                                           "joined_at": iso_timestamp(event.origin_server_ts),
                                                           "webhook": webhook_id_of(key) is not None},
                                     members),
                            Dispatch("SERVER_CREATE", server_json(server, key), frozenset({key}))]
                if event.membership in ("leave", "ban") and (old is None or old.is_member(key)):
                    return [Dispatch("SERVER_MEMBER_REMOVE", {"server_id": sid, "user_id": key},
                                     old_members | members | {key}),
                            Dispatch("SERVER_DELETE", {"id": sid, "unavailable": False}, frozenset({key}))]
                return []
            if kind == perms.ROLE_EVENT:
                role = server.roles.get(key)
                existed = old is not None and key in old.roles
                if role is None:
                    return [Dispatch("ROLE_DELETE", {"server_id": sid, "role_id": key}, members)] if existed else []
                return [Dispatch("ROLE_UPDATE" if existed else "ROLE_CREATE", role_json(sid, role), members)]
            if kind == perms.MEMBER_EVENT:
                user_id = perms.user_of_state_key(key)
                if user_id is None:
                    return []
                return [Dispatch("MEMBER_ROLE_UPDATE", {"server_id": sid, "user_id": user_id,
                                                        "role_ids": list(server.member_roles.get(user_id, ()))},
                                 members)]
            return []  # m.space.child and the rest: the visibility diff says it
        if before.is_channel or after.is_channel:
            context = after if after.is_channel else before
            users = self._audience(context)
            if not wanted(users):
                return []
            channel = context.channel
            ids = self._ids(context)
            if kind == "m.room.pinned_events":
                pinned = content.get("pinned")
                pinned = [p for p in pinned if isinstance(p, str)] if isinstance(pinned, list) else []
                return [Dispatch("MESSAGE_PIN", {**ids, "pinned": pinned}, users)]
            if not after.is_channel:
                return []  # deleted: CHANNEL_DELETE comes from the visibility diff
            if kind == VOICE_STATE_EVENT:
                user_id = perms.user_of_state_key(key)
                if user_id is None:
                    return []
                state = voice_state_json(channel.server_id, channel.room_id, user_id,
                                         content if isinstance(content, dict) else {})
                return [Dispatch("VOICE_STATE_UPDATE", state, users)]
            if kind == perms.OVERWRITE_EVENT:
                return [Dispatch("CHANNEL_OVERRIDE_UPDATE", {**ids, "overrides": overrides_json(channel)}, users),
                        Dispatch("CHANNEL_UPDATE", channel.to_json(), users)]
            if kind in ("m.room.name", "m.room.topic", "m.room.join_rules"):
                return [Dispatch("CHANNEL_UPDATE", channel.to_json(), users)]
            return []
        if kind == "m.room.member":
            return await self._dm_membership(event, after, wanted)
        return []

    async def _dm_membership(self, event, context: RoomContext, wanted) -> list[Dispatch]:
        """A user joining a DM (as the DM module sees it) learns of it."""
        user_id = event.state_key or ""
        if event.membership != "join" or not wanted({user_id}):
            return []
        try:
            channel = await get_dm(self._hs, event.room_id, user_id)
        except MatrixError:
            return []  # not a DM
        return [Dispatch("DM_CHANNEL_CREATE", channel, frozenset({user_id}))] if isinstance(channel, dict) else []

    def _visibility(self, before: RoomContext, after: RoomContext) -> list[Dispatch]:
        """CHANNEL_CREATE / CHANNEL_DELETE / CHANNEL_UPDATE for whoever gained or lost
        sight of a channel (or saw it move) through a change of the server's state."""
        old = before.server
        new = after.server
        if old is None or new is None or old is new:
            return []  # a server appearing or going is SERVER_CREATE / SERVER_DELETE
        out: list[Dispatch] = []
        old_channels = {c.room_id: c for c in old.channels} if old is not None else {}
        new_channels = {c.room_id: c for c in new.channels} if new is not None else {}
        for channel_id in sorted(set(old_channels) | set(new_channels)):
            was, now = old_channels.get(channel_id), new_channels.get(channel_id)
            saw = self._contexts.viewers(old, was) if was is not None else frozenset()
            sees = self._contexts.viewers(new, now) if now is not None else frozenset()
            if sees - saw:
                out.append(Dispatch("CHANNEL_CREATE", now.to_json(), sees - saw))
            if saw - sees:
                out.append(Dispatch("CHANNEL_DELETE", {"id": channel_id, "server_id": was.server_id}, saw - sees))
            if was is not None and now is not None and saw & sees and \
                    (was.position, was.parent_id) != (now.position, now.parent_id):
                out.append(Dispatch("CHANNEL_UPDATE", now.to_json(), saw & sees))
        return out

    # -- ephemeral and per-user streams --------------------------------------------

    async def typing(self, room_id: str, user_id: str, typing: bool, now_ms: int, wanted) -> list[Dispatch]:
        if not typing:
            return []
        context = await self._contexts.resolve(room_id)
        if context.is_server:
            return []
        users = self._audience(context)
        if not wanted(users):
            return []
        payload = {**self._ids(context), "user_id": user_id, "timestamp": now_ms // 1000}
        return [Dispatch("TYPING_START", payload, users, durable=False)]

    async def presence(self, user_id: str, content: dict, wanted) -> list[Dispatch]:
        # Those who share a server or a DM with the user, from the cached contexts: the
        # presence of a thousand members coming online must not read a thousand rooms.
        users = {user_id}
        for room_id in await self._hs.rooms.get_rooms_for_user(user_id):
            context = await self._contexts.resolve(room_id)
            if context.is_server:
                users.update(context.server.members)
            elif not context.is_channel:
                users.update(context.members)
        users = frozenset(users)
        if not wanted(users):
            return []
        status, custom = from_matrix_presence(content.get("presence", "offline"), content.get("status_msg"))
        return [Dispatch("PRESENCE_UPDATE", {"user_id": user_id, "status": status, "custom_status": custom}, users)]

    async def receipt(self, receipt, wanted) -> list[Dispatch]:
        if receipt.receipt_type not in ("m.read", "m.read.private") or not wanted({receipt.user_id}):
            return []
        return [Dispatch("MESSAGE_ACK", {"channel_id": receipt.room_id, "message_id": receipt.event_id},
                         frozenset({receipt.user_id}))]

    def remember_relationships(self, user_id: str, relationships: list) -> None:
        """What READY told the user, so that changes can be sent one target at a time."""
        self._relationships[user_id] = _relationship_types(relationships)

    async def relationships(self, user_id: str, wanted) -> list[Dispatch]:
        if not wanted({user_id}):
            return []
        now = _relationship_types(await list_relationships(self._hs, user_id))
        before = self._relationships.get(user_id, {})
        self._relationships[user_id] = now
        return [Dispatch("RELATIONSHIP_UPDATE", {"user_id": user_id, "target_id": target, "rel_type": now.get(target)},
                         frozenset({user_id}))
                for target in sorted(set(before) | set(now)) if before.get(target) != now.get(target)]


def _relationship_types(relationships) -> dict[str, str]:
    return {r["user_id"]: r.get("type") for r in relationships or ()
            if isinstance(r, dict) and isinstance(r.get("user_id"), str)}
