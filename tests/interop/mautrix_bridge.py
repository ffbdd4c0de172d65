"""A minimal echo bridge written with mautrix (PyPI), run as its own process against a
homeserver, the way a real mautrix bridge uses the application-service API.

    python mautrix_bridge.py HOMESERVER_URL SERVER_NAME ID AS_TOKEN HS_TOKEN BOT_LOCALPART PORT

- It listens for transactions on 127.0.0.1:PORT.
- A ghost (``@_echo_*:SERVER_NAME``) invited to a room registers itself
  (``m.login.application_service``, through ``IntentAPI.ensure_registered``) and joins.
- Every ``m.room.message`` from a user who is not ours, in a room where a ghost or the
  bot is, gets the answer ``echo: <body>`` from each ghost in that room; in a room with
  only the bot, from ``@_echo_<sender's localpart>``, who joins first.
- A user query for ``@_echo_*`` registers that ghost; an alias query for
  ``#_echo_<name>:SERVER_NAME`` makes the bot create a public portal room with that alias.
- When ready it prints one JSON line to stdout:
  ``{"ready": true, "bot": ..., "whoami": ..., "ping": <ms or error text>}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys

from mautrix.appservice import AppService, IntentAPI
from mautrix.appservice.state_store import ASStateStore
from mautrix.client.state_store import MemoryStateStore
from mautrix.types import EventType, Membership, RoomCreatePreset, RoomDirectoryVisibility

GHOST_PREFIX = "_echo_"

log = logging.getLogger("echo-bridge")


class MemoryASStateStore(MemoryStateStore, ASStateStore):
    """mautrix's in-memory state store with the appservice part (nothing on disk)."""

    def __init__(self) -> None:
        MemoryStateStore.__init__(self)
        ASStateStore.__init__(self)


class EchoBridge:
    def __init__(self, homeserver: str, domain: str, as_id: str, as_token: str, hs_token: str,
                 bot_localpart: str, port: int):
        self.domain = domain
        self.port = port
        self.ghost_re = re.compile(rf"@{re.escape(GHOST_PREFIX)}[^:]+:{re.escape(domain)}")
        self.alias_re = re.compile(rf"#{re.escape(GHOST_PREFIX)}([^:]+):{re.escape(domain)}")
        # room ID -> our users (bot and ghosts) invited or joined there, as the pushed
        # member events tell; updated before any await so the order of events holds.
        self.ours_in_room: dict[str, set[str]] = {}
        self.az = AppService(server=homeserver, domain=domain, id=as_id, as_token=as_token,
                             hs_token=hs_token, bot_localpart=bot_localpart, log=log,
                             state_store=MemoryASStateStore(), query_user=self.query_user,
                             query_alias=self.query_alias, bridge_name="echo")
        self.az.matrix_event_handler(self.handle_event)

    def is_ours(self, user_id: str) -> bool:
        return user_id == self.az.bot_mxid or self.ghost_re.fullmatch(user_id) is not None

    def intent_for(self, user_id: str) -> IntentAPI:
        return self.az.intent if user_id == self.az.bot_mxid else self.az.intent.user(user_id)

    # -- homeserver -> bridge -------------------------------------------------------

    async def query_user(self, user_id: str):
        if self.ghost_re.fullmatch(user_id) is None:
            return None
        await self.intent_for(user_id).ensure_registered()
        log.info("user query: registered %s", user_id)
        return {"registered": user_id}

    async def query_alias(self, alias: str):
        match = self.alias_re.fullmatch(alias)
        if match is None:
            return None
        localpart = alias[1:].split(":", 1)[0]
        room_id = await self.az.intent.create_room(
            alias_localpart=localpart, preset=RoomCreatePreset.PUBLIC,
            visibility=RoomDirectoryVisibility.PRIVATE, name=f"Echo portal {match.group(1)}")
        self.ours_in_room.setdefault(room_id, set()).add(self.az.bot_mxid)
        log.info("alias query: created %s for %s", room_id, alias)
        # The spec's answer is an empty object; mautrix answers 404 for a falsy one.
        return {"room_id": room_id}

    async def handle_event(self, evt) -> None:
        room_id = evt.room_id
        if evt.type == EventType.ROOM_MEMBER:
            target = evt.state_key
            if not self.is_ours(target):
                return
            membership = evt.content.membership
            present = self.ours_in_room.setdefault(room_id, set())
            if membership in (Membership.INVITE, Membership.JOIN):
                present.add(target)
            else:
                present.discard(target)
            if membership == Membership.INVITE and evt.sender != target:
                await self.intent_for(target).ensure_joined(room_id, bot=None)
                log.info("%s joined %s on invite", target, room_id)
        elif evt.type == EventType.ROOM_MESSAGE:
            if self.is_ours(evt.sender):
                return
            present = self.ours_in_room.get(room_id, set())
            ghosts = sorted(u for u in present if u != self.az.bot_mxid)
            if not ghosts and self.az.bot_mxid in present:
                ghosts = [f"@{GHOST_PREFIX}{evt.sender[1:].split(':', 1)[0]}:{self.domain}"]
            body = getattr(evt.content, "body", None)
            if not ghosts or not isinstance(body, str):
                return
            for ghost in ghosts:
                self.ours_in_room.setdefault(room_id, set()).add(ghost)
                intent = self.intent_for(ghost)
                await intent.ensure_joined(room_id)
                await intent.send_text(room_id, f"echo: {body}")
                log.info("%s echoed %r in %s", ghost, body, room_id)

    # -- life cycle -----------------------------------------------------------------

    async def run(self) -> None:
        await self.az.start(host="127.0.0.1", port=self.port)
        # As mautrix bridges start: the server answers, the as_token works, the bot exists.
        await self.az.intent.versions()
        whoami = await self.az.intent.whoami()
        await self.az.intent.ensure_registered()
        try:
            ping: int | str = await self.az.ping_self()
        except Exception as error:  # reported, not fatal: the bridge works without it
            ping = f"{type(error).__name__}: {error}"
        self.az.ready = True
        print(json.dumps({"ready": True, "bot": self.az.bot_mxid, "whoami": whoami.user_id, "ping": ping}),
              flush=True)
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    if len(argv) != 7:
        sys.exit(__doc__)
    homeserver, domain, as_id, as_token, hs_token, bot_localpart, port = argv
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def run() -> None:
        # Built inside the running loop: mautrix and aiohttp take the current loop.
        bridge = EchoBridge(homeserver, domain, as_id, as_token, hs_token, bot_localpart, int(port))
        await bridge.run()

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1:])
