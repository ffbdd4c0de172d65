"""Receiving PDUs from other servers: the checks on receipt, then the DAG.

1. format for the room version (else dropped), 2. signatures (else dropped), 3. content
hash (else the redacted form is kept), then ``EventIngester`` does 4-6 (auth against
the event's auth events and the state before it: rejected; against the current state:
soft-failed).

When an event refers to events we lack, the origin is asked: ``get_missing_events`` for
a short gap in the prev events, then ``/state_ids`` (and ``/event`` or ``/state``) for the
state after prev events still missing, which are then kept as outliers. Auth events
come from ``/event_auth``. Every fetched event goes through the same signature and hash
checks, and outliers through the auth rules against their own auth events.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from twisted.internet import defer
from twisted.logger import Logger

from federation.auth import room_server_acl
from federation.client import path_of
from homeserver.events.auth_rules import AuthError, check_auth, check_auth_events
from homeserver.events.event import Event
from homeserver.events.received import parse_received_pdu, server_name_of
from homeserver.events.room_versions import RoomVersion
from homeserver.events.server_acl import server_allowed
from homeserver.events.validation import EventFormatError
from homeserver.handlers.event_ingest import MissingEvents, MissingState
from storage.stores.state import StateKey

log = Logger(namespace="drocsid.federation.pdu")

# get_missing_events returns at most this many events per call.
MISSING_EVENTS_LIMIT = 20
# Above this many unknown state events, fetch /state in one go instead of /event each.
FETCH_EACH_LIMIT = 50


class PduRefused(Exception):
    """The PDU was dropped (bad format, bad signature, unknown room, ACL); the reason is
    returned to the sending server for that PDU, keyed by its ID when that is known."""

    def __init__(self, reason: str, event_id: str | None = None):
        super().__init__(reason)
        self.event_id = event_id


def topological_by_auth(events: Iterable[Event]) -> list[Event]:
    """Events ordered so each comes after the events it cites as auth events (ties: depth)."""
    pending = {e.event_id: e for e in events}
    ordered: list[Event] = []
    placed: set[str] = set()
    while pending:
        ready = [e for e in pending.values() if all(a not in pending for a in e.auth_event_ids)]
        if not ready:  # a cycle cannot be authorised; keep a deterministic order anyway
            ready = list(pending.values())
        for event in sorted(ready, key=lambda e: (e.depth, e.event_id)):
            ordered.append(event)
            placed.add(event.event_id)
            del pending[event.event_id]
    return ordered


class PduHandler:
    def __init__(self, hs):
        self._hs = hs
        self._keyring = hs.keyring
        self._client = hs.federation_client
        self._ingester = hs.event_ingester
        self._writer = hs.room_writer
        self._events = hs.events
        self._heads = hs.room_heads

    # -- receiving ------------------------------------------------------------------

    async def room_version_of(self, room_id: str) -> RoomVersion | None:
        head = await self._heads.get(room_id)
        if head is None or not head.extremities:
            return None
        return head.version

    async def on_pdu(self, origin: str, pdu: Any) -> Event:
        """Check and persist one PDU from ``origin``'s transaction; PduRefused if dropped."""
        room_id = pdu.get("room_id") if isinstance(pdu, dict) else None
        if not isinstance(room_id, str):
            raise PduRefused("PDU has no room_id")
        version = await self.room_version_of(room_id)
        if version is None:
            raise PduRefused(f"this server is not in room {room_id}")
        event = await self.check_pdu(version, pdu, room_id)
        try:
            await self._check_acl(event, origin)
            return await self.process(origin, event)
        except PduRefused as refused:
            refused.event_id = refused.event_id or event.event_id
            raise

    async def check_pdu(self, version: RoomVersion, pdu: Any, room_id: str | None) -> Event:
        """Steps 1-3 of the checks on receipt: format, signatures, hashes."""
        try:
            event, hash_ok = parse_received_pdu(version, pdu, room_id)
        except EventFormatError as error:
            raise PduRefused(f"malformed PDU: {error}") from None
        try:
            await self._keyring.verify_event(event)
        except Exception as error:
            raise PduRefused(f"signature check failed for {event.event_id}: {error}", event.event_id) from None
        if not hash_ok:
            log.info("content hash of {event_id} from {sender} is wrong; keeping it redacted",
                     event_id=event.event_id, sender=event.sender, event="pdu_hash_mismatch")
        return event

    async def _check_acl(self, event: Event, origin: str) -> None:
        """Both the server that sent the transaction and the event's own server must be
        let in by the room's m.room.server_acl."""
        acl = await room_server_acl(self._hs, event.room_id)
        for server in {origin, server_name_of(event.sender)}:
            if acl is not None and not server_allowed(server, acl):
                raise PduRefused(f"{server} is denied by the room's server ACL")

    async def process(self, origin: str, event: Event, fetch_prevs: bool = True) -> Event:
        """Ingest ``event``, fetching from ``origin`` what it refers to and we lack."""
        prev_states: dict[str, Mapping[StateKey, str]] = {}
        for _attempt in range(4):
            try:
                return await self._ingester.ingest(event, prev_states)
            except MissingEvents as missing:
                await self._fetch_missing(origin, event, set(missing.event_ids), fetch_prevs)
                fetch_prevs = False
            except MissingState as missing:
                for prev_id in missing.event_ids:
                    prev_states[prev_id] = await self.state_after(origin, event.room_id, prev_id)
        raise PduRefused(f"could not fetch what {event.event_id} refers to")

    async def _fetch_missing(self, origin: str, event: Event, missing: set[str], fetch_prevs: bool) -> None:
        missing_auth = [e for e in event.auth_event_ids if e in missing]
        if missing_auth:
            await self.fetch_auth_chain(origin, event.room_id, event.event_id)
        missing_prevs = [e for e in event.prev_event_ids if e in missing]
        if missing_prevs and fetch_prevs:
            await self._get_missing_events(origin, event)
        still = [e for e in missing_prevs if not await self._events.get_event(e)]
        if still:
            # A gap get_missing_events did not close: keep the prev events as outliers
            # and take the state after them from the origin.
            await self.fetch_outliers(origin, event.room_id, still)

    async def _get_missing_events(self, origin: str, event: Event) -> None:
        head = await self._heads.get(event.room_id)
        body = {"limit": MISSING_EVENTS_LIMIT, "min_depth": max(0, head.max_depth - 100) if head else 0,
                "earliest_events": list(head.extremities) if head else [], "latest_events": [event.event_id]}
        try:
            response = await self._client.post_json(
                origin, path_of("/_matrix/federation/v1/get_missing_events/", event.room_id), body)
        except Exception as error:
            log.info("get_missing_events from {origin} failed: {error}", origin=origin, error=str(error),
                     event="get_missing_events_failed")
            return
        received = []
        for pdu in response.get("events", []) if isinstance(response.get("events"), list) else []:
            try:
                received.append(await self.check_pdu(event.room_version, pdu, event.room_id))
            except PduRefused as refused:
                log.info("dropped a missing event from {origin}: {reason}", origin=origin, reason=str(refused))
        for missing_event in sorted(received, key=lambda e: (e.depth, e.event_id)):
            if missing_event.event_id == event.event_id or await self._events.get_event(missing_event.event_id):
                continue
            try:
                await self.process(origin, missing_event, fetch_prevs=False)
            except PduRefused as refused:
                log.info("could not take a missing event from {origin}: {reason}", origin=origin,
                         reason=str(refused))

    # -- outliers -------------------------------------------------------------------

    async def fetch_auth_chain(self, origin: str, room_id: str, event_id: str) -> None:
        version = await self._room_version(room_id)
        response = await self._client.get_json(
            origin, path_of("/_matrix/federation/v1/event_auth/", room_id, event_id))
        chain = response.get("auth_chain") if isinstance(response.get("auth_chain"), list) else []
        await self.store_outliers(version, room_id, chain)

    async def fetch_outliers(self, origin: str, room_id: str, event_ids: list[str]) -> list[Event]:
        version = await self._room_version(room_id)
        pdus = await self._fetch_events(origin, event_ids)
        # Their auth events first, so each outlier can be checked against them.
        needed = {a for pdu in pdus for a in pdu.get("auth_events", []) if isinstance(a, str)}
        unknown = [e for e in needed if e not in await self._events.get_event_rows(needed)]
        if unknown:
            pdus += await self._fetch_events(origin, unknown)
        return await self.store_outliers(version, room_id, pdus)

    async def state_after(self, origin: str, room_id: str, event_id: str) -> dict[StateKey, str]:
        """The state after ``event_id`` as ``origin`` sees it, every event of it stored."""
        version = await self._room_version(room_id)
        path = path_of("/_matrix/federation/v1/state_ids/", room_id)
        response = await self._client.get_json(origin, path, query={"event_id": event_id})
        state_ids = [e for e in response.get("pdu_ids", []) if isinstance(e, str)]
        chain_ids = [e for e in response.get("auth_chain_ids", []) if isinstance(e, str)]
        wanted = set(state_ids) | set(chain_ids) | {event_id}
        known = await self._events.get_event_rows(wanted)
        unknown = [e for e in wanted if e not in known]
        if len(unknown) > FETCH_EACH_LIMIT:
            state = await self._client.get_json(origin, path_of("/_matrix/federation/v1/state/", room_id),
                                                query={"event_id": event_id})
            pdus = [p for key in ("pdus", "auth_chain") for p in state.get(key, []) if isinstance(p, dict)]
            pdus += await self._fetch_events(origin, [event_id] if event_id in unknown else [])
        else:
            pdus = await self._fetch_events(origin, unknown)
        await self.store_outliers(version, room_id, pdus)
        events = await self._events.get_events(set(state_ids) | {event_id})
        state = {events[e].state_tuple: e for e in state_ids if e in events and events[e].is_state()
                 and not events[e].rejected}
        after = events.get(event_id)
        if after is not None and after.is_state() and not after.rejected:
            state[after.state_tuple] = after.event_id
        return state

    async def _fetch_events(self, origin: str, event_ids: list[str]) -> list[dict]:
        async def one(event_id: str):
            try:
                response = await self._client.get_json(origin, path_of("/_matrix/federation/v1/event/", event_id))
            except Exception as error:
                log.info("could not fetch {event_id} from {origin}: {error}", event_id=event_id, origin=origin,
                         error=str(error))
                return None
            pdus = response.get("pdus")
            return pdus[0] if isinstance(pdus, list) and pdus and isinstance(pdus[0], dict) else None
        found = []
        for start in range(0, len(event_ids), 10):
            results = await defer.gatherResults([defer.ensureDeferred(one(e)) for e in event_ids[start:start + 10]])
            found += [r for r in results if r is not None]
        return found

    async def store_outliers(self, version: RoomVersion, room_id: str, pdus: list[Any]) -> list[Event]:
        """Check fetched events (signatures, hashes, auth against their own auth events)
        and keep them as outliers; events failing auth are kept as rejected."""
        checked: dict[str, Event] = {}
        for pdu in pdus:
            try:
                event = await self.check_pdu(version, pdu, room_id)
            except PduRefused as refused:
                log.info("dropped a fetched event: {reason}", reason=str(refused))
                continue
            checked.setdefault(event.event_id, event)
        stored = await self._events.get_event_rows(list(checked))
        fresh = [e for e in checked.values() if e.event_id not in stored]
        if not fresh:
            return []
        cited = {a for e in fresh for a in e.auth_event_ids} - set(checked)
        available: dict[str, Event] = dict(await self._events.get_events(cited))
        available.update(checked)
        create = next((e for e in available.values() if e.type == "m.room.create"), None)
        if create is None:
            head = await self._heads.get(room_id)
            create_id = head.state.get(("m.room.create", "")) if head else None
            create = await self._events.get_event(create_id) if create_id else None
        for event in topological_by_auth(fresh):
            self.authorise_outlier(version, event, available, create)
        return await self._writer.write_outliers(room_id, fresh)

    @staticmethod
    def authorise_outlier(version: RoomVersion, event: Event, available: Mapping[str, Event],
                          create: Event | None) -> None:
        """Auth against the event's own auth events (rejected if it fails or lacks them)."""
        auth = [available[a] for a in event.auth_event_ids if a in available]
        if len(auth) != len(event.auth_event_ids):
            event.rejected_reason = "auth events unavailable"
            return
        supplied = auth + ([create] if create is not None and not version.create_in_auth_events
                           and event.type != "m.room.create" else [])
        try:
            check_auth_events(version, event, supplied)
            check_auth(version, event, {e.state_tuple: e for e in supplied if e.is_state()})
        except AuthError as error:
            event.rejected_reason = str(error)

    async def _room_version(self, room_id: str) -> RoomVersion:
        head = await self._heads.get(room_id)
        if head is None:
            raise PduRefused(f"unknown room {room_id}")
        return head.version
