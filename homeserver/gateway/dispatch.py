"""The dispatch pump: stream items in, numbered DISPATCH frames out, stored first.

Every new room event (the notifier's event listeners), local typing, presence and
receipt change is queued here. One pump at a time takes what is queued, in order, turns
each item into dispatches (``payloads.Translator``), gives each session in a dispatch's
audience its next sequence number, writes the whole batch (one row per dispatch, with
its audience: the users whose sessions got it) in one transaction, and only then sends
it. Sequence numbers follow from the stored rows alone (see ``sessions``), which is what
lets a RESUME, even after a restart, replay exactly what a session missed. A batch that
could not be stored is not sent. Typing is sent without a sequence and never stored.

Known limit: the pump is told of events in memory; if the process dies between an event
being stored and its dispatches being stored, those dispatches never exist (a graceful
stop flushes the pump first, so a restart loses nothing).
"""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.gateway.payloads import RELATIONSHIP_TYPES, Dispatch, Translator
from homeserver.gateway.protocol import DispatchTemplate
from homeserver.gateway.sessions import Session, SessionRegistry

log = Logger(namespace="drocsid.gateway")

MAX_AUDIENCES_KEPT = 256


class Dispatcher:
    def __init__(self, hs, registry: SessionRegistry, store, translator: Translator):
        self._hs = hs
        self._registry = registry
        self._store = store
        self._translator = translator
        self._queue: list[tuple] = []
        self._running = False
        self._enqueued = 0  # items queued since start
        self._done = 0      # items whose batch is stored and sent
        self._flush_waiters: list[tuple[int, defer.Deferred]] = []
        self._next_payload_id = 0
        self._next_audience_id = 0
        # Audiences stored lately, reused by later payloads; forgotten at each prune
        # (which may delete them), and pruning runs in the pump, between batches.
        self._audiences: dict[tuple[str, ...], int] = {}
        self.stopped = False
        self.on_lost = lambda session: None  # a session whose dispatches could not be stored

    async def start(self) -> None:
        self._next_payload_id, self._next_audience_id = await self._store.max_ids()

    # -- input ----------------------------------------------------------------------

    def on_event(self, event) -> None:
        self._enqueue(("event", event))

    def on_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        if typing:
            self._enqueue(("typing", room_id, user_id, typing, self._hs.clock.time_ms()))

    def on_presence(self, user_id: str, content: dict) -> None:
        self._enqueue(("presence", user_id, content))

    def on_receipt(self, receipt) -> None:
        self._enqueue(("receipt", receipt))

    def on_account_data(self, user_id: str, room_id: str, data_type: str, content: dict) -> None:
        if room_id == "" and data_type in RELATIONSHIP_TYPES:
            self._enqueue(("relationships", user_id))

    def prune(self, oldest_checkpoint) -> defer.Deferred:
        """Drop stored payloads up to ``oldest_checkpoint()`` (called when it runs)."""
        self._enqueue(("prune", oldest_checkpoint))
        return self.flushed()

    def _enqueue(self, item: tuple) -> None:
        if self.stopped:
            return
        self._queue.append(item)
        self._enqueued += 1
        if not self._running:
            self._running = True
            defer.ensureDeferred(self._pump())

    def flushed(self) -> defer.Deferred:
        """Fires once everything queued so far is stored and sent (later items need not be)."""
        if self._done >= self._enqueued:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._flush_waiters.append((self._enqueued, waiter))
        return waiter

    # -- the pump -------------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            while self._queue:
                items, self._queue = self._queue, []
                try:
                    await self._run_batch(items)
                except Exception:
                    log.failure("gateway dispatch batch failed")
                self._done += len(items)
                self._wake_flushers()
        finally:
            self._running = False
            self._wake_flushers()

    def _wake_flushers(self) -> None:
        ready = [w for target, w in self._flush_waiters if target <= self._done or not self._running]
        self._flush_waiters = [(t, w) for t, w in self._flush_waiters if w not in ready]
        for waiter in ready:
            waiter.callback(None)

    def _wanted(self, users) -> bool:
        registry = self._registry
        return any(registry.has_user(u) for u in users)

    async def _translate(self, item: tuple) -> list[Dispatch]:
        kind = item[0]
        t = self._translator
        if kind == "event":
            event = item[1]
            if not self._registry:
                # Nobody listens; only keep the permission contexts right.
                if event.is_state():
                    t.note_state(event)
                return []
            found = await t.event(event, self._wanted)
        elif kind == "typing":
            found = await t.typing(item[1], item[2], item[3], item[4], self._wanted)
        elif kind == "presence":
            found = await t.presence(item[1], item[2], self._wanted)
        elif kind == "receipt":
            found = await t.receipt(item[1], self._wanted)
        elif kind == "relationships":
            found = await t.relationships(item[1], self._wanted)
        else:
            found = []
        return found

    async def _run_batch(self, items: list[tuple]) -> None:
        payload_rows: list[tuple[int, str, str, int]] = []
        new_audiences: list[tuple[int, list[str]]] = []
        sends: list[tuple[Session, int | None, bytes]] = []
        prunes = [item[1] for item in items if item[0] == "prune"]
        for item in items:
            try:
                translated = await self._translate(item)
            except Exception:
                log.failure("gateway could not translate {kind}", kind=item[0])
                continue
            # From here to the next await nothing else runs: payload IDs and sequence
            # numbers are given out in one order, the one a replay counts in.
            for dispatch in translated:
                users = sorted(u for u in dispatch.users if self._registry.has_user(u))
                if not users:
                    continue
                sessions = [s for user_id in users for s in self._registry.of_user(user_id)]
                encoded = json.dumps(dispatch.payload, ensure_ascii=False, separators=(",", ":"))
                template = DispatchTemplate(dispatch.name, encoded)
                if not dispatch.durable:
                    frame = template.frame(None)
                    sends.extend((s, None, frame) for s in sessions)
                    continue
                self._next_payload_id += 1
                payload_id = self._next_payload_id
                audience_id = self._audiences.get(tuple(users))
                if audience_id is None:
                    self._next_audience_id += 1
                    audience_id = self._next_audience_id
                    if len(self._audiences) >= MAX_AUDIENCES_KEPT:
                        self._audiences.clear()
                    self._audiences[tuple(users)] = audience_id
                    new_audiences.append((audience_id, users))
                payload_rows.append((payload_id, dispatch.name, encoded, audience_id))
                for session in sessions:
                    seq = session.number(payload_id)
                    sends.append((session, seq, template.frame(seq)))
        if payload_rows:
            try:
                await self._store.write_payloads(payload_rows, new_audiences)
            except Exception:
                self._audiences.clear()
                # Not stored, so not sent: a client must never hold what a RESUME cannot
                # replay. Those sessions have a gap now; they end (a RESUME is refused).
                log.failure("gateway could not store {count} dispatches", count=len(payload_rows))
                for session in {s for s, seq, _ in sends if seq is not None}:
                    self.on_lost(session)
                sends = [x for x in sends if x[1] is None]
        for session, seq, frame in sends:
            session.deliver(seq, frame)
        if prunes:
            self._audiences.clear()
            try:
                await self._store.prune_payloads(prunes[-1]())
            except Exception:
                log.failure("gateway could not prune stored dispatches")

    @property
    def last_payload_id(self) -> int:
        return self._next_payload_id
