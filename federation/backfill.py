"""Backfill: history from before this server joined a room (or from while it was away),
fetched from another server when a client's ``/messages`` reaches the start of what we
hold. The events pass the same signature, hash and auth checks as any received event
and are stored below every stream position handed out so far, so paging back finds
them and ``/sync`` never presents them as new."""

from __future__ import annotations

from twisted.logger import Logger

from federation.client import path_of
from federation.pdu_handler import PduHandler, PduRefused
from homeserver.events.event import Event
from homeserver.locks import KeyedLock

log = Logger(namespace="drocsid.federation.backfill")

BACKFILL_LIMIT = 50


class Backfiller:
    def __init__(self, hs, pdu_handler: PduHandler):
        self._hs = hs
        self._pdus = pdu_handler
        self._events = hs.events
        self._locks = KeyedLock()

    async def backfill(self, room_id: str) -> bool:
        """Fetch older events of the room; True if any new ones were stored."""
        async with self._locks.hold(room_id):
            head = await self._hs.room_heads.get(room_id)
            if head is None or not head.extremities:
                return False
            starts = await self._events.backward_extremities(room_id)
            if not starts:
                return False
            servers = await self._hs.federation_store.servers_in_room(room_id)
            servers.discard(self._hs.config.server_name)
            for server in sorted(servers):
                try:
                    stored = await self._from(server, room_id, head.version, starts)
                except Exception as error:
                    log.info("backfill of {room_id} from {server} failed: {error}", room_id=room_id,
                             server=server, error=str(error), event="backfill_failed")
                    continue
                if stored:
                    log.info("backfilled {count} events of {room_id} from {server}", count=stored,
                             room_id=room_id, server=server, event="backfilled")
                    return True
            return False

    async def _from(self, server: str, room_id: str, version, starts: list[str]) -> int:
        response = await self._hs.federation_client.get_json(
            server, path_of("/_matrix/federation/v1/backfill/", room_id),
            query=[("v", e) for e in starts] + [("limit", str(BACKFILL_LIMIT))])
        pdus = response.get("pdus") if isinstance(response.get("pdus"), list) else []
        checked: dict[str, Event] = {}
        for pdu in pdus:
            try:
                event = await self._pdus.check_pdu(version, pdu, room_id)
            except PduRefused as refused:
                log.info("dropped a backfilled event from {server}: {reason}", server=server, reason=str(refused))
                continue
            checked[event.event_id] = event
        rows = await self._events.get_event_rows(list(checked))
        fresh = [e for e in checked.values() if e.event_id not in rows or rows[e.event_id].event.outlier]
        if not fresh:
            return 0
        # Their auth events, where we lack them, come from the same server.
        cited = {a for e in fresh for a in e.auth_event_ids}
        known = await self._events.get_events(cited)
        unknown = [a for a in cited if a not in known and a not in checked]
        if unknown:
            await self._pdus.fetch_outliers(server, room_id, unknown)
            known = await self._events.get_events(cited)
        available = {**known, **checked}
        create_id = (await self._hs.room_heads.get(room_id)).state.get(("m.room.create", ""))
        create = available.get(create_id) or (await self._events.get_event(create_id) if create_id else None)
        for event in sorted(fresh, key=lambda e: (e.depth, e.event_id)):
            if event.event_id in rows:
                continue  # an outlier we hold: already checked when it was stored
            PduHandler.authorise_outlier(version, event, available, create)
        await self._events.persist_backfilled(fresh, self._hs.clock.time_ms())
        return len(fresh)
