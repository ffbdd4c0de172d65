"""Keeping a server's power-level mirror and private-channel membership in step with its
roles, whichever way they changed.

``/api/v1`` brings the rooms in step itself right after a change; but a role, a member's
roles or an overwrite may also be written by a Matrix client (Element, a bot) or arrive
over federation. This keeper watches every new event and, for those kinds of state in a
server whose owner is a user of this homeserver (only the owner's homeserver writes the
mirror, as the owner), runs ``roles.sync_server`` in the background, after any change
the API is making to that server (the same per-server lock). Changes are
coalesced per server: a burst of role edits costs one run after it, not one per edit;
a run that finds everything in step writes nothing.
"""

from __future__ import annotations

from twisted.logger import Logger

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.relationships import is_local
from homeserver.drocsid.roles import sync_server_in_turn
from homeserver.drocsid.server_state import load_server, server_of_channel

log = Logger(namespace="drocsid.mirror")

WATCHED = frozenset({perms.ROLE_EVENT, perms.MEMBER_EVENT, perms.OVERWRITE_EVENT})


class MirrorKeeper:
    def __init__(self, hs):
        self._hs = hs
        self._dirty: set[str] = set()     # rooms whose server needs a run
        self._running = False
        hs.notifier.add_event_listener(self.on_event)

    def on_event(self, event) -> None:
        if event.type not in WATCHED or not event.is_state() or event.rejected or event.soft_failed:
            return
        self._dirty.add(event.room_id)
        if not self._running:
            self._running = True
            self._hs.run_in_background("drocsid_mirror", self._run())

    async def _run(self) -> None:
        try:
            while self._dirty:
                rooms, self._dirty = self._dirty, set()
                for server_id in await self._servers_of(rooms):
                    try:
                        await self._sync(server_id)
                    except Exception:
                        log.failure("bringing server {server_id} in step failed", server_id=server_id)
        finally:
            self._running = False

    async def _servers_of(self, rooms: set[str]) -> list[str]:
        found: set[str] = set()
        for room_id in rooms:
            server = await load_server(self._hs, room_id, with_channels=False)
            if server is not None:
                found.add(room_id)
                continue
            owning = await server_of_channel(self._hs, room_id)
            if owning is not None:
                found.add(owning[0].room_id)
        return sorted(found)

    async def _sync(self, server_id: str) -> None:
        server = await load_server(self._hs, server_id, with_channels=False)
        if server is None or not is_local(self._hs, server.owner_id):
            return
        await sync_server_in_turn(self._hs, server_id)
