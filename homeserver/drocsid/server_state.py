"""Reading a Drocsid server from room state: its roles, members' roles, owner, channels
and categories, and what a user may do in it or in one of its channels.

Everything here is read from the rooms' current state (``hs.room_heads``), so every
instance that holds the rooms computes the same answer; the permission math itself is
``homeserver.drocsid.permissions``.

A server is a space (create ``type: "m.space"``) with an ``io.drocsid.role`` "" state
event (@everyone) and no ``io.drocsid.deleted`` state. Its channels are the rooms its
``m.space.child`` events (with a non-empty ``via``) name; a child that is itself a
space is a category, whose own children are channels too (one level, as in Discord).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeserver.drocsid import permissions as perms

SPACE_TYPE = "m.space"
VOICE_TYPE = "io.drocsid.voice"
DELETED_EVENT = "io.drocsid.deleted"

# State types read from a server space or a channel room (members separately).
_SERVER_TYPES = frozenset({"m.room.create", "m.room.name", "m.room.topic", "m.room.avatar", perms.ROLE_EVENT,
                           perms.MEMBER_EVENT, "m.space.child", DELETED_EVENT, "m.room.join_rules"})
_CHANNEL_TYPES = frozenset({"m.room.create", "m.room.name", "m.room.topic", "m.room.join_rules",
                            "m.space.parent", "m.space.child", perms.OVERWRITE_EVENT, DELETED_EVENT})


def parse_order(order: Any) -> int | None:
    """A channel's position from its ``m.space.child`` ``order`` (zero-padded digits)."""
    if isinstance(order, str) and order.isdigit() and len(order) <= 18:
        return int(order)
    return None


def format_order(position: int) -> str:
    # Zero-padded, so Matrix clients (which compare ``order`` as a string) agree.
    return "%06d" % position


@dataclass
class RoomState:
    """The current state events of one room that we read, by (type, state_key)."""
    room_id: str
    events: dict[tuple[str, str], Any]          # (type, state_key) -> Event
    memberships: dict[str, str] = field(default_factory=dict)  # user_id -> membership

    def content(self, event_type: str, state_key: str = "") -> dict:
        event = self.events.get((event_type, state_key))
        return event.content if event is not None else {}

    def has(self, event_type: str, state_key: str = "") -> bool:
        return (event_type, state_key) in self.events

    def of_type(self, event_type: str) -> dict[str, dict]:
        return {k: e.content for (t, k), e in self.events.items() if t == event_type}

    @property
    def create(self):
        return self.events.get(("m.room.create", ""))

    @property
    def room_type(self) -> str | None:
        create = self.create
        kind = create.content.get("type") if create is not None else None
        return kind if isinstance(kind, str) else None

    @property
    def name(self) -> str | None:
        name = self.content("m.room.name").get("name")
        return name if isinstance(name, str) else None

    @property
    def topic(self) -> str | None:
        topic = self.content("m.room.topic").get("topic")
        return topic if isinstance(topic, str) else None

    @property
    def join_rule(self) -> str | None:
        rule = self.content("m.room.join_rules").get("join_rule")
        return rule if isinstance(rule, str) else None

    @property
    def deleted(self) -> bool:
        return self.has(DELETED_EVENT)

    def joined(self, user_id: str) -> bool:
        return self.memberships.get(user_id) == "join"

    def children(self) -> dict[str, dict]:
        """``m.space.child`` links with a non-empty ``via``: room ID -> content."""
        return {k: c for k, c in self.of_type("m.space.child").items()
                if isinstance(c.get("via"), list) and c.get("via")}


# (room_id, types, members) -> (the head's state map it was read from, RoomState). A
# head's state map is replaced on every state change and kept while only messages are
# sent, so its identity says whether a RoomState read from it is still current.
_STATE_CACHE_SIZE = 4096


async def load_room_state(hs, room_id: str, types=None, *, members: bool = True) -> RoomState | None:
    """The room's current state of the given types (and memberships), or None if unknown.
    The answer is shared between callers: read it, never change it."""
    head = await hs.room_heads.get(room_id)
    if head is None or not head.extremities:
        return None
    cache = hs.__dict__.setdefault("_drocsid_room_states", {})
    key = (room_id, types if types is None else frozenset(types), members)
    cached = cache.get(key)
    if cached is not None and cached[0] is head.state:
        return cached[1]
    state, complete = await _read_room_state(hs, head, room_id, types, members)
    if complete:
        if len(cache) >= _STATE_CACHE_SIZE:
            cache.clear()  # crude, but bounded; a cleared entry is just read again
        cache[key] = (head.state, state)
    return state


async def _read_room_state(hs, head, room_id: str, types, members: bool) -> tuple[RoomState, bool]:
    """The state, and whether every event of it was found (only then may it be cached)."""
    wanted = {key: event_id for key, event_id in head.state.items()
              if (types is None or key[0] in types) or (members and key[0] == "m.room.member")}
    # The head moves on as soon as an event is queued: read queued events too.
    loaded = await hs.room_writer.get_events(list(wanted.values()))
    events, memberships = {}, {}
    for key, event_id in wanted.items():
        event = loaded.get(event_id)
        if event is None:
            continue
        if key[0] == "m.room.member":
            if event.membership:
                memberships[key[1]] = event.membership
            if types is not None and "m.room.member" not in types:
                continue
        events[key] = event
    return RoomState(room_id, events, memberships), len(loaded) == len(set(wanted.values()))


@dataclass
class Channel:
    room_id: str
    server_id: str
    state: RoomState
    kind: str                    # "text", "voice" or "category"
    position: int
    parent_id: str | None        # the category it sits in, if any

    @property
    def overwrites(self) -> dict[str, perms.Overwrite]:
        return perms.overwrites_from_state(self.state.of_type(perms.OVERWRITE_EVENT))

    @property
    def private(self) -> bool:
        return self.state.join_rule == "invite"

    def to_json(self) -> dict:
        return {"id": self.room_id, "server_id": self.server_id, "name": self.state.name or "",
                "type": self.kind, "topic": self.state.topic or None, "position": self.position,
                "parent_id": self.parent_id, "private": self.private}


def _kind(state: RoomState) -> str:
    room_type = state.room_type
    if room_type == SPACE_TYPE:
        return "category"
    if room_type == VOICE_TYPE:
        return "voice"
    return "text"


@dataclass
class Server:
    """A server as its space's state says it is."""
    room_id: str
    state: RoomState
    channels: list[Channel]

    @property
    def owner_id(self) -> str:
        return self.state.create.sender

    @property
    def created_ts(self) -> int:
        return self.state.create.origin_server_ts

    @property
    def roles(self) -> dict[str, perms.Role]:
        return perms.roles_from_state(self.state.of_type(perms.ROLE_EVENT))

    @property
    def member_roles(self) -> dict[str, tuple[str, ...]]:
        return perms.member_roles_from_state(self.state.of_type(perms.MEMBER_EVENT))

    @property
    def members(self) -> list[str]:
        return sorted(u for u, m in self.state.memberships.items() if m == "join")

    def is_member(self, user_id: str) -> bool:
        return self.state.joined(user_id)

    def permissions(self, user_id: str) -> int:
        return perms.server_permissions(self.owner_id, self.roles, self.member_roles.get(user_id, ()), user_id)

    def overwrites_for(self, channel: Channel) -> dict[str, perms.Overwrite]:
        """The overwrites that apply in a channel: its own, or its category's when it has none."""
        overwrites = channel.overwrites
        if channel.parent_id is not None and not overwrites:
            # A channel without overwrites of its own follows its category ("synced").
            category = self.channel(channel.parent_id)
            overwrites = category.overwrites if category is not None else overwrites
        return overwrites

    def channel_permissions(self, user_id: str, channel: Channel) -> int:
        return perms.channel_permissions(self.owner_id, self.roles, self.member_roles.get(user_id, ()), user_id,
                                         self.overwrites_for(channel))

    def can_view(self, user_id: str, channel: Channel) -> bool:
        return bool(self.channel_permissions(user_id, channel) & perms.P.VIEW_CHANNEL)

    def channel(self, room_id: str) -> Channel | None:
        return next((c for c in self.channels if c.room_id == room_id), None)

    def visible_channels(self, user_id: str) -> list[Channel]:
        return [c for c in self.channels if self.can_view(user_id, c)]

    def to_json(self, user_id: str | None = None, *, with_channels: bool = False) -> dict:
        from homeserver.api.users import iso_timestamp

        avatar = self.state.content("m.room.avatar").get("url")
        body = {"id": self.room_id, "name": self.state.name or "", "description": self.state.topic or None,
                "icon_url": avatar if isinstance(avatar, str) else None, "owner_id": self.owner_id,
                "created_at": iso_timestamp(self.created_ts)}
        if with_channels:
            channels = self.visible_channels(user_id) if user_id is not None else self.channels
            body["channels"] = [c.to_json() for c in channels]
        return body


def is_server_state(state: RoomState | None) -> bool:
    return (state is not None and state.room_type == SPACE_TYPE and state.has(perms.ROLE_EVENT, perms.EVERYONE)
            and not state.deleted and state.create is not None)


async def load_server(hs, room_id: str, *, with_channels: bool = True) -> Server | None:
    """The server whose space is ``room_id``, or None if that is not a (live) server."""
    state = await load_room_state(hs, room_id, _SERVER_TYPES)
    if not is_server_state(state):
        return None
    server = Server(room_id, state, [])
    if with_channels:
        server.channels = await _load_channels(hs, state)
    return server


async def _load_channels(hs, space: RoomState) -> list[Channel]:
    channels: list[Channel] = []

    async def add(parent: RoomState, parent_id: str | None, depth: int) -> None:
        links = parent.children()
        for index, (room_id, content) in enumerate(sorted(links.items())):
            state = await load_room_state(hs, room_id, _CHANNEL_TYPES, members=True)
            if state is None or state.deleted or state.create is None:
                continue  # a room this server does not hold, or a deleted channel
            kind = _kind(state)
            if kind == "category" and depth > 0:
                continue  # categories do not nest
            position = parse_order(content.get("order"))
            channel = Channel(room_id, space.room_id, state, kind, position if position is not None else 0,
                              parent_id)
            channels.append(channel)
            if kind == "category":
                await add(state, room_id, depth + 1)

    await add(space, None, 0)
    channels.sort(key=lambda c: (c.position, c.room_id))
    return channels


async def server_of_channel(hs, channel_id: str) -> tuple[Server, Channel] | None:
    """The server a channel belongs to, found through its ``m.space.parent`` and
    confirmed by the server's own ``m.space.child`` (a room cannot claim a server)."""
    state = await load_room_state(hs, channel_id, _CHANNEL_TYPES, members=False)
    if state is None:
        return None
    parents = state.of_type("m.space.parent")
    ordered = sorted(parents, key=lambda k: (parents[k].get("canonical") is not True, k))
    for parent_id in ordered:
        if not parents[parent_id].get("via"):
            continue
        server = await load_server(hs, parent_id)
        if server is not None:
            channel = server.channel(channel_id)
            if channel is not None:
                return server, channel
    return None


async def user_servers(hs, user_id: str, *, with_channels: bool = False) -> list[Server]:
    """The servers the user is joined to, oldest first."""
    servers = []
    for room_id in await hs.rooms.get_rooms_for_user(user_id):
        head = await hs.room_heads.get(room_id)
        if head is None or (perms.ROLE_EVENT, perms.EVERYONE) not in head.state:
            continue
        server = await load_server(hs, room_id, with_channels=with_channels)
        if server is not None and server.is_member(user_id):
            servers.append(server)
    servers.sort(key=lambda s: (s.created_ts, s.room_id))
    return servers
