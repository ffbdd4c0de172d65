"""Permission contexts for dispatch, cached per server until its state changes.

Deciding who may see a dispatch reads the server (its roles, members' roles and the
channels' overwrites) from room state. That is done once per server and kept until a
state event arrives in the server's space or one of its channels (the dispatcher sees
every event in order, so it invalidates exactly when the context moves on); who may
view a channel is kept alongside, so an ordinary message costs a dictionary look-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.drocsid.server_state import Channel, Server, load_room_state, load_server, server_of_channel

# State in a channel room that does not change what anyone may see there.
_INERT_CHANNEL_STATE = frozenset({"m.room.member", "m.room.pinned_events", "m.room.power_levels"})


@dataclass
class RoomContext:
    """What a room is to the gateway: a server's space, a channel of it, or another room."""
    room_id: str
    server: Server | None = None
    channel: Channel | None = None
    members: frozenset[str] = frozenset()  # joined members, for other rooms

    @property
    def is_server(self) -> bool:
        return self.server is not None and self.channel is None

    @property
    def is_channel(self) -> bool:
        return self.channel is not None


class RoomContexts:
    def __init__(self, hs):
        self._hs = hs
        self._servers: dict[str, Server] = {}
        self._room_server: dict[str, str] = {}            # room -> server, for spaces and channels
        self._others: dict[str, RoomContext] = {}          # rooms that are no server's
        self._viewers: dict[tuple[str, str], frozenset[str]] = {}

    async def resolve(self, room_id: str) -> RoomContext:
        server_id = self._room_server.get(room_id)
        if server_id is not None and server_id in self._servers:
            return self._context(self._servers[server_id], room_id)
        other = self._others.get(room_id)
        if other is not None:
            return other
        server = await load_server(self._hs, room_id)
        if server is None:
            found = await server_of_channel(self._hs, room_id)
            server = found[0] if found is not None else None
            if server is not None and server.room_id in self._servers:
                # The server as the stream has seen it so far does not hold this room
                # yet: its m.space.child is still to come, and will make it a channel.
                server = None
        if server is not None:
            self._remember(server)
            return self._context(server, room_id)
        state = await load_room_state(self._hs, room_id, ())
        members = frozenset(u for u, m in state.memberships.items() if m == "join") if state else frozenset()
        context = RoomContext(room_id, members=members)
        self._others[room_id] = context
        return context

    async def server(self, server_id: str) -> Server | None:
        context = await self.resolve(server_id)
        return context.server if context.is_server else None

    def _remember(self, server: Server) -> None:
        self.forget_server(server.room_id)
        self._servers[server.room_id] = server
        self._room_server[server.room_id] = server.room_id
        for channel in server.channels:
            self._room_server[channel.room_id] = server.room_id
            self._others.pop(channel.room_id, None)

    def _context(self, server: Server, room_id: str) -> RoomContext:
        if room_id == server.room_id:
            return RoomContext(room_id, server=server)
        channel = server.channel(room_id)
        if channel is None:
            return RoomContext(room_id)
        return RoomContext(room_id, server=server, channel=channel)

    def viewers(self, server: Server, channel: Channel) -> frozenset[str]:
        """The server's members who may view the channel now."""
        key = (server.room_id, channel.room_id)
        found = self._viewers.get(key)
        if found is None or self._servers.get(server.room_id) is not server:
            found = frozenset(u for u in server.members if server.can_view(u, channel))
            if self._servers.get(server.room_id) is server:
                self._viewers[key] = found
        return found

    def forget_server(self, server_id: str) -> None:
        self._servers.pop(server_id, None)
        for key in [k for k in self._viewers if k[0] == server_id]:
            del self._viewers[key]
        for room_id in [r for r, s in self._room_server.items() if s == server_id]:
            del self._room_server[room_id]

    def on_state_event(self, event) -> None:
        """A state event arrived: the contexts it may change are read afresh next time."""
        room_id = event.room_id
        server_id = self._room_server.get(room_id)
        if server_id is not None:
            if not (server_id != room_id and event.type in _INERT_CHANNEL_STATE):
                self.forget_server(server_id)
        self._others.pop(room_id, None)
        if event.type == "m.space.child":
            # The child may have become (or stopped being) a channel.
            self._others.pop(event.state_key or "", None)
