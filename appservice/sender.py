"""Pushing to application services: one persisted queue per service, one transaction in
flight each, in order.

Each service with a ``url`` has a position in the event stream (stored). The sender reads
the events after it from the database, keeps those the service is interested in, and
stores them as the service's next transaction (``{"events": [...], "ephemeral": [...]}``,
with the next transaction ID) together with the new position, before trying to push it.
Stored transactions are pushed oldest first, one at a time; one is deleted only once the
service answered 2xx. A failed push backs off exponentially (1 s doubling to 5 minutes)
and retries the same stored body under the same ID, so the service may dedupe by ID and
nothing is ever reordered or merged once stored. A restart, or a service that was down,
resumes from the stored transactions and the stored position: nothing is lost.

Typing notices, read receipts and presence (``receive_ephemeral``) wait in memory and go
into the next transaction made; they are ephemeral and not kept across a restart.

To-device messages for users in its users namespace (``receive_to_device``, MSC2409) wait
the same way, in memory and bounded, and go into the next transaction under
``de.sorunome.msc2409.to_device`` and ``org.matrix.msc2409.to_device``. They are not kept
across a restart either; each message stays in the recipient device's to-device inbox, where
/sync still delivers it.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.events.client_format import client_event
from homeserver.events.event import Event

log = Logger(namespace="drocsid.appservice.sender")

MAX_EVENTS_PER_TRANSACTION = 100
MAX_EPHEMERAL_PER_TRANSACTION = 100
MAX_QUEUED_EPHEMERAL = 1000
MAX_TO_DEVICE_PER_TRANSACTION = 100
MAX_QUEUED_TO_DEVICE = 1000
RETRY_MIN_MS = 1000
RETRY_MAX_MS = 5 * 60 * 1000


class _Queue:
    def __init__(self, registration, position: int):
        self.registration = registration
        self.position = position
        self.ephemeral: list[dict] = []
        self.to_device: list[dict] = []
        self.running = False
        self.wanted = False
        self.retry_call = None
        self.retry_interval_ms = 0
        self.retry_last_ts = 0
        self.in_flight: defer.Deferred | None = None


class ApplicationServiceSender:
    def __init__(self, hs, store=None):
        from storage.stores.appservice import AppServiceStore
        self._hs = hs
        self.store = store if store is not None else AppServiceStore(hs.db)
        self._clock = hs.clock
        self.retry_min_ms = RETRY_MIN_MS
        self.retry_max_ms = RETRY_MAX_MS
        self._queues: dict[str, _Queue] = {}
        self._running: set[defer.Deferred] = set()
        self._stopped = False
        self._listening = False
        # Routes to-device messages one call at a time, so they keep their order.
        self._to_device_lock = defer.DeferredLock()
        self.transactions_sent = 0

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load each pushing service's position (a new one starts at the stream's head)
        and resume whatever is queued. Called once the database is migrated."""
        self._stopped = False
        head = self._hs.notifier.events_position
        for registration in getattr(self._hs, "appservices", None) or []:
            if not registration.url:
                continue
            position = await self.store.init_position(registration.id, head)
            self._queues[registration.id] = _Queue(registration, position)
        if not self._queues:
            return
        if not self._listening:
            self._listening = True
            self._hs.notifier.add_event_listener(self.on_new_event)
            self._hs.typing.add_listener(self.on_typing)
            self._hs.receipts_handler.add_listener(self.on_receipt)
            self._hs.presence.add_listener(self.on_presence)
            self._hs.to_device.add_listener(self.on_to_device)
        for service_id in list(self._queues):
            self._wake(service_id)

    async def stop(self) -> None:
        """Stop pushing and wait for the writes under way (the database closes next). A
        push under way is abandoned: its transaction stays stored and goes out next time."""
        self._stopped = True
        for queue in self._queues.values():
            if queue.retry_call is not None and queue.retry_call.active():
                queue.retry_call.cancel()
            if queue.in_flight is not None:
                queue.in_flight.cancel()
        if self._running:
            await defer.DeferredList(list(self._running), consumeErrors=True)

    def _track(self, work: defer.Deferred, what: str) -> None:
        self._running.add(work)

        def done(result):
            self._running.discard(work)
            return result
        work.addBoth(done)
        work.addErrback(lambda failure: log.failure("appservice {what} failed", failure, what=what))

    # -- what arrives -------------------------------------------------------------------

    def on_new_event(self, event: Event) -> None:
        if self._stopped:
            return
        for service_id in list(self._queues):
            self._wake(service_id)

    def on_service_seen(self, service_id: str) -> None:
        """The service just called us, so it is up: end its backoff."""
        queue = self._queues.get(service_id)
        if queue is None or queue.retry_interval_ms == 0 or self._stopped:
            return
        queue.retry_interval_ms = 0
        if queue.retry_call is not None and queue.retry_call.active():
            queue.retry_call.cancel()
        self._wake(service_id)

    def on_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        edu = {"type": "m.typing", "room_id": room_id, "content": {"user_ids": list(self._hs.typing.typing_in(room_id))}}
        self._ephemeral_for_room(room_id, edu)

    def on_receipt(self, receipt) -> None:
        if receipt.receipt_type == "m.read.private":
            return
        data: dict = {"ts": receipt.ts}
        if receipt.thread_id:
            data["thread_id"] = receipt.thread_id
        edu = {"type": "m.receipt", "room_id": receipt.room_id,
               "content": {receipt.event_id: {receipt.receipt_type: {receipt.user_id: data}}}}
        self._ephemeral_for_room(receipt.room_id, edu)

    def on_presence(self, user_id: str, content: dict) -> None:
        queues = self._ephemeral_queues()
        if not queues:
            return
        edu = {"type": "m.presence", "sender": user_id, "content": dict(content)}

        async def route() -> None:
            sharing = None
            for queue in queues:
                registration = queue.registration
                if not registration.is_user_in_namespace(user_id):
                    if sharing is None:
                        sharing = await self._hs.rooms.users_sharing_rooms(user_id)
                    if not any(registration.is_user_in_namespace(u) for u in sharing):
                        continue
                self._add_ephemeral(queue, edu)
        self._track(defer.ensureDeferred(route()), "presence routing")

    def on_to_device(self, sender: str, event_type: str, messages: list[tuple[str, str, dict]]) -> None:
        """Messages just stored for local ``(user, device ID or '*', content)``: those for
        a ``receive_to_device`` service's users wait for its next transaction, one per
        device they were stored for."""
        if self._stopped:
            return
        queues = [q for q in self._queues.values() if q.registration.receive_to_device]
        wanted = [(q, [m for m in messages if q.registration.is_user_in_namespace(m[0])]) for q in queues]
        wanted = [(q, mine) for q, mine in wanted if mine]
        if not wanted:
            return
        acquired = self._to_device_lock.acquire()  # in call order

        async def route() -> None:
            await acquired
            try:
                devices: dict[str, list[str]] = {}
                for queue, mine in wanted:
                    for user_id, device_id, content in mine:
                        if user_id not in devices:
                            devices[user_id] = [d.device_id for d in await self._hs.devices.get_devices(user_id)]
                        # As the inbox stored them: '*' is every device, unknown ones are dropped.
                        targets = devices[user_id] if device_id == "*" else \
                            [device_id] if device_id in devices[user_id] else []
                        for target in targets:
                            self._add_to_device(queue, {"type": event_type, "sender": sender, "content": content,
                                                        "to_user_id": user_id, "to_device_id": target})
            finally:
                self._to_device_lock.release()
        self._track(defer.ensureDeferred(route()), "to-device routing")

    def _add_to_device(self, queue: _Queue, message: dict) -> None:
        if self._stopped:
            return
        queue.to_device.append(message)
        if len(queue.to_device) > MAX_QUEUED_TO_DEVICE:
            log.info("dropped the oldest to-device messages waiting for {service}", service=queue.registration.id)
            del queue.to_device[:-MAX_QUEUED_TO_DEVICE]
        self._wake(queue.registration.id)

    def _ephemeral_queues(self) -> list[_Queue]:
        if self._stopped:
            return []
        return [q for q in self._queues.values() if q.registration.receive_ephemeral]

    def _ephemeral_for_room(self, room_id: str, edu: dict) -> None:
        queues = self._ephemeral_queues()
        if not queues:
            return

        async def route() -> None:
            cache: dict = {}
            for queue in queues:
                if await self._interested_in_room(queue.registration, room_id, cache):
                    self._add_ephemeral(queue, edu)
        self._track(defer.ensureDeferred(route()), "ephemeral routing")

    def _add_ephemeral(self, queue: _Queue, edu: dict) -> None:
        if self._stopped:
            return
        queue.ephemeral.append(edu)
        del queue.ephemeral[:-MAX_QUEUED_EPHEMERAL]
        self._wake(queue.registration.id)

    # -- interest -----------------------------------------------------------------------

    async def _room_facts(self, room_id: str, cache: dict) -> tuple[list[str], list[str]]:
        """(aliases, joined members) of a room, cached for one batch."""
        if room_id in cache:
            return cache[room_id]
        aliases: list[str] = []
        head = await self._hs.room_heads.get(room_id)
        canonical_id = head.state.get(("m.room.canonical_alias", "")) if head is not None else None
        if canonical_id is not None:
            canonical = await self._hs.events.get_event(canonical_id)
            if canonical is not None:
                content = canonical.content
                if isinstance(content.get("alias"), str):
                    aliases.append(content["alias"])
                alt = content.get("alt_aliases")
                if isinstance(alt, list):
                    aliases += [a for a in alt if isinstance(a, str)]
        aliases += await self._hs.rooms.get_aliases_for_room(room_id)
        members = [user for user, (membership, _) in (await self._hs.rooms.get_members(room_id)).items()
                   if membership == "join"]
        cache[room_id] = (aliases, members)
        return cache[room_id]

    async def _interested_in_room(self, registration, room_id: str, cache: dict) -> bool:
        if registration.is_room_in_namespace(room_id):
            return True
        aliases, members = await self._room_facts(room_id, cache)
        return registration.interested_in_event("", "", None, room_id, aliases, members)

    async def _interested(self, registration, event: Event, cache: dict) -> bool:
        if registration.interested_in_event(event.sender, event.type, event.state_key, event.room_id):
            return True
        aliases, members = await self._room_facts(event.room_id, cache)
        return registration.interested_in_event(event.sender, event.type, event.state_key, event.room_id,
                                                aliases, members)

    # -- the loop per service -----------------------------------------------------------------

    def _wake(self, service_id: str) -> None:
        queue = self._queues.get(service_id)
        if queue is None or self._stopped:
            return
        queue.wanted = True
        if queue.running:
            return
        queue.running = True
        d = defer.ensureDeferred(self._run(queue))

        def finished(result):
            queue.running = False
            if queue.wanted and not self._stopped:
                self._wake(service_id)
            return result
        d.addBoth(finished)
        self._track(d, f"sending to {service_id}")

    def _backing_off(self, queue: _Queue) -> bool:
        if not queue.retry_interval_ms:
            return False
        waiting = queue.retry_last_ts + queue.retry_interval_ms - self._clock.time_ms()
        if waiting <= 0:
            return False
        if queue.retry_call is None or not queue.retry_call.active():
            queue.retry_call = self._hs.reactor.callLater(waiting / 1000, self._wake, queue.registration.id)
        return True

    async def _run(self, queue: _Queue) -> None:
        service_id = queue.registration.id
        while queue.wanted and not self._stopped:
            queue.wanted = False
            await self._queue_new(queue)
            if self._backing_off(queue):
                return
            while not self._stopped:
                pending = await self.store.oldest_transaction(service_id)
                if pending is None:
                    break
                txn_id, body = pending
                if not await self._push(queue, txn_id, body):
                    self._back_off(queue)
                    return
                await self.store.complete_transaction(service_id, txn_id)
                queue.retry_interval_ms = 0
                if queue.wanted:
                    break  # queue what arrived meanwhile, then go on pushing

    async def _queue_new(self, queue: _Queue) -> None:
        """Turn the events after the position (and the waiting ephemeral events and
        to-device messages) into stored transactions."""
        registration = queue.registration
        while not self._stopped:
            rows = await self.store.events_after(queue.position, MAX_EVENTS_PER_TRANSACTION)
            ephemeral = queue.ephemeral[:MAX_EPHEMERAL_PER_TRANSACTION]
            to_device = queue.to_device[:MAX_TO_DEVICE_PER_TRANSACTION]
            if not rows and not ephemeral and not to_device:
                return
            loaded = await self._hs.events.get_events([event_id for _, event_id in rows])
            cache: dict = {}
            now = self._clock.time_ms()
            chosen = []
            for _, event_id in rows:
                event = loaded.get(event_id)
                if event is not None and await self._interested(registration, event, cache):
                    chosen.append(client_event(event, now))
            position = rows[-1][0] if rows else queue.position
            if chosen or ephemeral or to_device:
                body: dict = {"events": chosen}
                if registration.receive_ephemeral and ephemeral:
                    # The stable key and MSC2409's (older bridges read only that one).
                    body["ephemeral"] = ephemeral
                    body["de.sorunome.msc2409.ephemeral"] = ephemeral
                if registration.receive_to_device and to_device:
                    body["de.sorunome.msc2409.to_device"] = to_device
                    body["org.matrix.msc2409.to_device"] = to_device
                txn_id = await self.store.queue_transaction(registration.id, position, body, now)
                del queue.ephemeral[:len(ephemeral)]
                del queue.to_device[:len(to_device)]
                log.debug("queued transaction {txn_id} for {service}: {events} events, {ephemeral} ephemeral,"
                          " {to_device} to-device", txn_id=txn_id, service=registration.id, events=len(chosen),
                          ephemeral=len(ephemeral), to_device=len(to_device))
            elif rows:
                await self.store.advance_position(registration.id, position)
            queue.position = max(queue.position, position)
            if len(rows) < MAX_EVENTS_PER_TRANSACTION and not queue.ephemeral and not queue.to_device:
                return

    async def _push(self, queue: _Queue, txn_id: int, body: dict) -> bool:
        from appservice.client import AppServiceError
        registration = queue.registration
        queue.in_flight = defer.ensureDeferred(self._hs.appservice_client.push(registration, txn_id, body))
        try:
            await queue.in_flight
        except (AppServiceError, defer.CancelledError) as error:
            log.info("pushing transaction {txn_id} to {service} failed: {error}", txn_id=txn_id,
                     service=registration.id, error=str(error), event="appservice_push_failed")
            return False
        finally:
            queue.in_flight = None
        self.transactions_sent += 1
        return True

    def _back_off(self, queue: _Queue) -> None:
        interval = queue.retry_interval_ms * 2 if queue.retry_interval_ms else self.retry_min_ms
        queue.retry_interval_ms = min(max(interval, 1), self.retry_max_ms)
        queue.retry_last_ts = self._clock.time_ms()
        # Typing notices go stale while the service is away.
        queue.ephemeral = [e for e in queue.ephemeral if e["type"] != "m.typing"]
        if not self._stopped:
            queue.retry_call = self._hs.reactor.callLater(queue.retry_interval_ms / 1000, self._wake,
                                                          queue.registration.id)

    # -- for tests and admin ------------------------------------------------------------

    async def pending_count(self, service_id: str) -> int:
        return await self.store.count_transactions(service_id)
