"""Ephemeral data units between servers (typing, receipts, presence, to-device).

Outbound: the typing, receipt and presence handlers and the to-device handler tell us of
their local users' updates; each becomes an EDU queued on the federation sender for the
servers concerned (those with joined members in the room; those sharing a room with the
user for presence; the recipients' servers for to-device). Updates about one room (or,
for presence, one user) are fanned out one after the other, so they reach a server in
the order they happened.

Inbound: an EDU speaks only for users of the server that sent it (``user_id`` or
``sender`` must end with ``:origin``); typing and receipts also need the user joined to
the room (current state). Anything else is ignored, as are malformed entries.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.handlers.e2e_keys import server_of
from homeserver.handlers.presence import STATES
from homeserver.locks import KeyedLock
from storage.stores.receipts import Receipt

log = Logger(namespace="drocsid.federation.edus")

TYPING = "m.typing"
RECEIPT = "m.receipt"
PRESENCE = "m.presence"
DIRECT_TO_DEVICE = "m.direct_to_device"


def attach(hs) -> None:
    """Register inbound EDU handlers and outbound hooks on a homeserver with federation."""
    edus = FederationEdus(hs)
    hs.federation_edus = edus
    transactions = hs.federation_transactions
    transactions.register_edu_handler(TYPING, edus.on_typing)
    transactions.register_edu_handler(RECEIPT, edus.on_receipt)
    transactions.register_edu_handler(PRESENCE, edus.on_presence)
    transactions.register_edu_handler(DIRECT_TO_DEVICE, edus.on_direct_to_device)
    hs.typing.add_listener(edus.local_typing)
    hs.receipts_handler.add_listener(edus.local_receipt)
    hs.presence.add_listener(edus.local_presence)
    # ``hs.to_device`` is built with the client routes, after federation is attached;
    # the federation routes are built later still (at start), so hook it in from there.
    hs.federation_route_modules.append(_hook_to_device)


def _hook_to_device(router, hs, authenticated) -> None:
    to_device = getattr(hs, "to_device", None)
    if to_device is not None:
        to_device.remote_sender = hs.federation_edus.local_to_device


class FederationEdus:
    def __init__(self, hs):
        self._hs = hs
        self._server_name = hs.config.server_name
        self._order = KeyedLock()

    # -- outbound ---------------------------------------------------------------------------

    def local_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        content = {"room_id": room_id, "user_id": user_id, "typing": typing}
        self._background("typing_edu", self._to_room(room_id, TYPING, content))

    def local_receipt(self, receipt: Receipt) -> None:
        if receipt.receipt_type != "m.read":
            return  # private receipts (and anything else) stay on this server
        data: dict[str, Any] = {"ts": receipt.ts}
        if receipt.thread_id:
            data["thread_id"] = receipt.thread_id
        content = {receipt.room_id: {"m.read": {receipt.user_id: {"event_ids": [receipt.event_id], "data": data}}}}
        self._background("receipt_edu", self._to_room(receipt.room_id, RECEIPT, content))

    def local_presence(self, user_id: str, presence: dict) -> None:
        entry = {"user_id": user_id, **presence}
        self._background("presence_edu", self._presence_to_servers(user_id, {"push": [entry]}))

    def local_to_device(self, destination: str, content: dict) -> None:
        self._queue(destination, DIRECT_TO_DEVICE, content)

    async def _to_room(self, room_id: str, edu_type: str, content: dict) -> None:
        async with self._order.hold(("room", room_id)):
            for server in sorted(await self._hs.federation_store.servers_in_room(room_id)):
                self._queue(server, edu_type, content)

    async def _presence_to_servers(self, user_id: str, content: dict) -> None:
        async with self._order.hold(("user", user_id)):
            servers: set[str] = set()
            for room_id in await self._hs.rooms.get_rooms_for_user(user_id):
                servers |= await self._hs.federation_store.servers_in_room(room_id)
            for server in sorted(servers):
                self._queue(server, PRESENCE, content)

    def _queue(self, destination: str, edu_type: str, content: dict) -> None:
        if destination == self._server_name:
            return
        sender = self._hs.federation_sender
        sender.send_edu(destination, edu_type, content)

    def _background(self, name: str, coroutine) -> None:
        run = getattr(self._hs, "run_in_background", None)
        if run is not None:
            run(name, coroutine)
            return
        d = defer.ensureDeferred(coroutine)
        d.addErrback(lambda failure: log.failure("{name} failed", failure, name=name))

    # -- inbound ----------------------------------------------------------------------------

    async def _joined(self, room_id: str, user_id: str) -> bool:
        return await self._hs.membership.current_membership(room_id, user_id) == "join"

    async def on_typing(self, origin: str, content: dict) -> None:
        room_id, user_id, typing = content.get("room_id"), content.get("user_id"), content.get("typing")
        if not isinstance(room_id, str) or not isinstance(user_id, str) or not isinstance(typing, bool):
            return
        if server_of(user_id) != origin or not await self._joined(room_id, user_id):
            log.debug("ignored typing of {user_id} in {room_id} from {origin}", user_id=user_id,
                      room_id=room_id, origin=origin)
            return
        self._hs.typing.set_remote_typing(room_id, user_id, typing)

    async def on_receipt(self, origin: str, content: dict) -> None:
        now = self._hs.clock.time_ms()
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict) or not isinstance(by_type.get("m.read"), dict):
                continue  # only public read receipts travel
            for user_id, value in by_type["m.read"].items():
                if not isinstance(value, dict) or server_of(user_id) != origin:
                    continue
                event_ids = value.get("event_ids")
                if not isinstance(event_ids, list) or not event_ids \
                        or not all(isinstance(e, str) for e in event_ids):
                    continue
                data = value.get("data") if isinstance(value.get("data"), dict) else {}
                ts = data.get("ts")
                if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
                    ts = now
                thread_id = data.get("thread_id")
                if not isinstance(thread_id, str):
                    thread_id = ""
                if not await self._joined(room_id, user_id):
                    continue
                event_id = await self._latest(room_id, event_ids)
                await self._hs.receipts_handler.apply_remote(
                    Receipt(room_id, "m.read", user_id, thread_id, event_id, ts))

    async def _latest(self, room_id: str, event_ids: list[str]) -> str:
        """The newest of the events a receipt names (one, nearly always)."""
        if len(event_ids) == 1:
            return event_ids[0]
        best, best_order = event_ids[0], -1
        for event_id in event_ids:
            event = await self._hs.events.get_event(event_id)
            if event is not None and event.room_id == room_id and (event.stream_ordering or 0) > best_order:
                best, best_order = event_id, event.stream_ordering or 0
        return best

    async def on_presence(self, origin: str, content: dict) -> None:
        push = content.get("push")
        if not isinstance(push, list):
            return
        now = self._hs.clock.time_ms()
        for entry in push:
            if not isinstance(entry, dict):
                continue
            user_id, state = entry.get("user_id"), entry.get("presence")
            if not isinstance(user_id, str) or server_of(user_id) != origin or state not in STATES:
                continue
            ago = entry.get("last_active_ago", 0)
            if not isinstance(ago, int) or isinstance(ago, bool) or ago < 0:
                ago = 0
            status_msg = entry.get("status_msg")
            if not isinstance(status_msg, str):
                status_msg = None  # a longer one is cut to MAX_STATUS_MSG by the handler
            # Only users who share a room with us: nobody here could see the others.
            if not await self._hs.rooms.get_rooms_for_user(user_id):
                continue
            await self._hs.presence.apply_remote(user_id, state, status_msg, now - ago)

    async def on_direct_to_device(self, origin: str, content: dict) -> None:
        sender, event_type = content.get("sender"), content.get("type")
        message_id, messages = content.get("message_id"), content.get("messages")
        if not isinstance(sender, str) or server_of(sender) != origin or not isinstance(event_type, str) \
                or not isinstance(message_id, str) or not message_id or not isinstance(messages, dict):
            return
        to_device = getattr(self._hs, "to_device", None)
        if to_device is None:
            return
        local: list[tuple[str, str, dict]] = []
        for user_id, devices in messages.items():
            if server_of(user_id) != self._server_name or not isinstance(devices, dict):
                continue
            for device_id, message in devices.items():
                if isinstance(device_id, str) and isinstance(message, dict):
                    local.append((user_id, device_id, message))
        if local:
            await to_device.deliver_remote(sender, event_type, message_id, local)
