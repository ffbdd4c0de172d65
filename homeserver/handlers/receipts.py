"""Read receipts and account data: store, then tell the notifier who should hear of it.

A local user's receipts are also told to the listeners (federation sends the public ones
on); other servers' users' receipts are stored through ``apply_remote``.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from homeserver.http.errors import forbidden, not_found
from storage.stores.receipts import Receipt

log = Logger()

ReceiptListener = Callable[[Receipt], None]


class ReceiptsHandler:
    def __init__(self, clock, receipts, membership, events, notifier, account_data_handler):
        self._clock = clock
        self._receipts = receipts
        self._membership = membership
        self._events = events
        self._notifier = notifier
        self._account_data = account_data_handler
        self._listeners: list[ReceiptListener] = []

    def add_listener(self, listener: ReceiptListener) -> None:
        """Called with every receipt a local user stored (private ones too: the listener picks)."""
        self._listeners.append(listener)

    async def mark(self, user_id: str, room_id: str, receipt_type: str, event_id: str, thread_id: str) -> None:
        if await self._membership.current_membership(room_id, user_id) != "join":
            raise forbidden("You are not in this room")
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Unknown event")
        if receipt_type == "m.fully_read":
            await self._account_data.put(user_id, room_id, "m.fully_read", {"event_id": event_id})
            return
        receipt = Receipt(room_id, receipt_type, user_id, thread_id, event_id, self._clock.time_ms())
        stream_id = await self._receipts.put(receipt)
        if receipt_type == "m.read.private":
            # Private receipts go to their owner only.
            self._notifier.on_user_stream("receipts", stream_id, user_id)
        else:
            self._notifier.on_room_stream("receipts", stream_id, room_id)
        for listener in self._listeners:
            try:
                listener(receipt)
            except Exception:
                log.failure("receipt listener failed")

    async def apply_remote(self, receipt: Receipt) -> None:
        """A receipt of another server's user (checked by the caller): stored and shown
        to the room, not told to the listeners."""
        stream_id = await self._receipts.put(receipt)
        self._notifier.on_room_stream("receipts", stream_id, receipt.room_id)


class AccountDataHandler:
    def __init__(self, store, notifier):
        self._store = store
        self._notifier = notifier
        self._listeners: list[Callable[[str, str, str, dict], None]] = []

    def add_listener(self, listener: Callable[[str, str, str, dict], None]) -> None:
        """Called with (user_id, room_id, type, content) for every stored change (the gateway)."""
        self._listeners.append(listener)

    async def put(self, user_id: str, room_id: str, data_type: str, content: dict) -> None:
        stream_id = await self._store.put(user_id, room_id, data_type, content)
        self._notifier.on_user_stream("account_data", stream_id, user_id)
        for listener in self._listeners:
            try:
                listener(user_id, room_id, data_type, content)
            except Exception:
                log.failure("account data listener failed")
