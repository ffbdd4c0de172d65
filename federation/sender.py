"""Sending to other servers: one queue per destination, one transaction in flight each.

PDUs are not queued in memory: each destination has a position in the event stream
(stored), and the sender reads what comes after it from the database, at most 50 PDUs
a transaction. So a restart, or a destination that was down, resumes from the position
with nothing lost: that is the catch-up. EDUs (typing, receipts, presence, device
lists, to-device) wait in memory, at most 100 a transaction.

A failed attempt backs off exponentially (stored, so a restart honours it); a request
from the destination, showing it is back, ends the backoff at once.
"""

from __future__ import annotations

import itertools

from twisted.internet import defer
from twisted.logger import Logger

from federation.client import path_of
from homeserver.events.event import Event
from homeserver.events.received import server_name_of
from storage.stores.federation import Destination, FederationStore

log = Logger(namespace="drocsid.federation.sender")

# EDUs waiting for a destination beyond this are dropped, oldest first (they are
# ephemeral; receipts and device lists are also readable again from their streams).
MAX_QUEUED_EDUS = 5000


class _Queue:
    def __init__(self, destination: Destination):
        self.destination = destination
        self.edus: list[dict] = []
        self.running = False
        self.wanted = False
        self.retry_call = None
        # Whether this process has sent the destination any PDU yet.
        self.pdus_sent = False
        # Fires once the destination's row is in the database (the loop updates it).
        self.stored: defer.Deferred = defer.succeed(None)


class FederationSender:
    def __init__(self, hs, store: FederationStore):
        self._hs = hs
        self._store = store
        self._client = hs.federation_client
        self._clock = hs.clock
        self._server_name = hs.config.server_name
        config = hs.config.federation
        self._max_pdus = config.max_transaction_pdus
        self._max_edus = config.max_transaction_edus
        self._retry_min_ms = int(config.retry_min_secs * 1000)
        self._retry_max_ms = int(config.retry_max_secs * 1000)
        self._queues: dict[str, _Queue] = {}
        self._txn_counter = itertools.count(1)
        self._running: set[defer.Deferred] = set()
        self._stopped = False
        self.transactions_sent = 0

    async def start(self) -> None:
        """Load destinations and resume each one with something left to send."""
        for name, destination in (await self._store.get_destinations()).items():
            self._queues[name] = _Queue(destination)
        self._hs.notifier.add_event_listener(self.on_new_event)
        for name in list(self._queues):
            self._wake(name)

    async def stop(self) -> None:
        self._stopped = True
        for queue in self._queues.values():
            if queue.retry_call is not None and queue.retry_call.active():
                queue.retry_call.cancel()
        if self._running:
            await defer.DeferredList(list(self._running), consumeErrors=True)

    # -- what to send ----------------------------------------------------------------

    def on_new_event(self, event: Event) -> None:
        local = server_name_of(event.sender) == self._server_name
        if self._stopped or not local and not self._hs.federation_relay.is_relayed(event.event_id):
            return
        d = defer.ensureDeferred(self._fan_out(event))
        d.addErrback(lambda failure: log.failure("fanning out {event_id} failed", failure, event_id=event.event_id))
        self._track(d)

    async def _fan_out(self, event: Event) -> None:
        head = self._hs.room_heads.peek(event.room_id)
        suffix = ":" + self._server_name
        if head is not None and not (event.type == "m.room.member" and event.state_key
                                     and not event.state_key.endswith(suffix)) \
                and all(key.endswith(suffix) for kind, key in head.state if kind == "m.room.member"):
            return  # a room of our own users only: nothing to send, and no query to find that out
        servers = await self._store.servers_in_room(event.room_id)
        if event.type == "m.room.member" and event.state_key:
            servers.add(server_name_of(event.state_key))
        servers.discard(self._server_name)
        origin = self._hs.federation_relay.origin_of(event.event_id)
        servers.discard(origin)
        for server in servers:
            await self._ensure_destination(server, (event.stream_ordering or 1) - 1)
            self._wake(server)

    async def _ensure_destination(self, server: str, position: int) -> _Queue:
        queue = self._queue_for(server, position)
        if position < queue.destination.last_stream_ordering and not queue.pdus_sent:
            # An EDU opened this queue at the stream's head while this event was still
            # being fanned out: start from the event so that it is not skipped.
            await queue.stored
            queue.destination.last_stream_ordering = position
            await self._store.save_destination(queue.destination)
        await queue.stored
        return queue

    def _queue_for(self, server: str, position: int) -> _Queue:
        """The destination's queue, made (and its row stored in the background) if new,
        at once, so that what is queued keeps its order."""
        queue = self._queues.get(server)
        if queue is None:
            destination = Destination(server, position)
            queue = self._queues[server] = _Queue(destination)
            if self._stopped:
                return queue  # shutting down: the database is going; nothing will be sent anyway
            stored = defer.ensureDeferred(self._store.add_destination(destination))
            stored.addErrback(lambda failure: log.failure("storing destination {server} failed", failure,
                                                          server=server))
            self._track(stored)
            queue.stored = stored
        return queue

    def _track(self, work: defer.Deferred) -> None:
        """Remember background work, so that stop() waits for it before the database closes."""
        self._running.add(work)
        work.addBoth(lambda result: (self._running.discard(work), result)[1])

    def send_edu(self, destination: str, edu_type: str, content: dict) -> None:
        if destination == self._server_name:
            return
        self._queue_edu(self._queue_for(destination, self._hs.notifier.events_position), edu_type, content)

    def _queue_edu(self, queue: _Queue, edu_type: str, content: dict) -> None:
        queue.edus.append({"edu_type": edu_type, "content": content})
        del queue.edus[:-MAX_QUEUED_EDUS]
        self._wake(queue.destination.name)

    def on_destination_seen(self, server: str) -> None:
        """The destination just reached us, so it is up: end its backoff."""
        queue = self._queues.get(server)
        if queue is None or queue.destination.retry_interval_ms == 0:
            return
        queue.destination.retry_interval_ms = 0
        queue.destination.retry_last_ts = 0
        if queue.retry_call is not None and queue.retry_call.active():
            queue.retry_call.cancel()
        if self._stopped:
            return
        saved = defer.ensureDeferred(self._store.save_destination(queue.destination))
        saved.addErrback(lambda failure: log.failure("saving destination {server} failed", failure, server=server))
        self._track(saved)
        self._wake(server)

    # -- the loop per destination ----------------------------------------------------------

    def _wake(self, server: str) -> None:
        queue = self._queues.get(server)
        if queue is None or self._stopped:
            return
        queue.wanted = True
        if queue.running:
            return
        waiting = queue.destination.retry_last_ts + queue.destination.retry_interval_ms - self._clock.time_ms()
        if queue.destination.retry_interval_ms and waiting > 0:
            if queue.retry_call is None or not queue.retry_call.active():
                queue.retry_call = self._hs.reactor.callLater(waiting / 1000, self._wake, server)
            return
        queue.running = True
        d = defer.ensureDeferred(self._run(queue))
        self._running.add(d)

        def finished(result):
            self._running.discard(d)
            queue.running = False
            if queue.wanted and not self._stopped:
                self._wake(server)
            return result
        d.addBoth(finished)
        d.addErrback(lambda failure: log.failure("sending to {destination} failed", failure, destination=server))

    async def _run(self, queue: _Queue) -> None:
        destination = queue.destination
        await queue.stored
        while queue.wanted and not self._stopped:
            queue.wanted = False
            while not self._stopped:
                pending = await self._store.pending_event_ids(destination.name, self._server_name,
                                                              destination.last_stream_ordering, self._max_pdus)
                edus = queue.edus[:self._max_edus]
                if not pending and not edus:
                    break
                events = await self._hs.events.get_events([e for _, e in pending])
                pdus = [events[e].pdu for _, e in pending if e in events]
                if not await self._send(destination.name, pdus, edus):
                    await self._back_off(queue)
                    return
                del queue.edus[:len(edus)]
                changed = destination.retry_interval_ms != 0
                destination.retry_interval_ms = 0
                if pending:
                    destination.last_stream_ordering = pending[-1][0]
                    queue.pdus_sent = True
                if pending or changed:
                    await self._store.save_destination(destination)

    async def _send(self, destination: str, pdus: list[dict], edus: list[dict]) -> bool:
        txn_id = f"{self._clock.time_ms()}.{next(self._txn_counter)}"
        body = {"origin": self._server_name, "origin_server_ts": self._clock.time_ms(), "pdus": pdus, "edus": edus}
        try:
            response = await self._client.put_json(destination, path_of("/_matrix/federation/v1/send/", txn_id),
                                                   body)
        except Exception as error:
            status = getattr(error, "status", None)
            if status is not None and 400 <= status < 500 and status != 429:
                # The destination refuses this transaction outright; retrying the same
                # content would stall everything behind it.
                log.warn("{destination} refused a transaction ({status}): {error}", destination=destination,
                         status=status, error=str(error), event="federation_txn_refused")
                return True
            log.info("sending to {destination} failed: {error}", destination=destination, error=str(error),
                     event="federation_send_failed")
            return False
        self.transactions_sent += 1
        for event_id, result in (response.get("pdus") or {}).items():
            if isinstance(result, dict) and result.get("error"):
                log.info("{destination} did not take {event_id}: {error}", destination=destination,
                         event_id=event_id, error=str(result["error"])[:200], event="federation_pdu_error")
        return True

    async def _back_off(self, queue: _Queue) -> None:
        destination = queue.destination
        interval = destination.retry_interval_ms * 2 if destination.retry_interval_ms else self._retry_min_ms
        destination.retry_interval_ms = min(max(interval, 1), self._retry_max_ms)
        destination.retry_last_ts = self._clock.time_ms()
        await self._store.save_destination(destination)
        # Typing notices go stale; keep the rest for when the destination is back.
        queue.edus = [e for e in queue.edus if e["edu_type"] != "m.typing"]
        queue.wanted = False
        queue.retry_call = self._hs.reactor.callLater(destination.retry_interval_ms / 1000, self._wake,
                                                      destination.name)
