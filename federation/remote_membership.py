"""The joining side of membership handshakes: our users joining, leaving, knocking on
rooms this server is not in, and inviting users of other servers.

A join asks a resident server for a template (``make_join``), signs it, and hands it
back (``send_join``); the answer is the room's state before the join and its auth
chain. Those events are checked (signatures, hashes, auth rules) and kept as outliers,
and the join becomes the room's first forward extremity here, with that state.
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.logger import Logger

from federation.client import path_of
from federation.pdu_handler import PduHandler, PduRefused
from homeserver.events.auth_rules import AuthError, check_auth, check_auth_events
from homeserver.events.builder import build_event
from homeserver.events.client_format import stripped_event, stripped_state_ids
from homeserver.events.event import Event
from homeserver.events.received import parse_received_pdu, server_name_of
from homeserver.events.validation import EventFormatError
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, UnsupportedRoomVersion, room_version
from homeserver.handlers.room_writer import CREATE_KEY
from homeserver.http.errors import MatrixError, forbidden

log = Logger(namespace="drocsid.federation.remote_membership")

SUPPORTED_VERSIONS = [("ver", v) for v in KNOWN_ROOM_VERSIONS]


def _remote_error(server: str, error: Exception) -> MatrixError:
    status = getattr(error, "status", None)
    errcode = getattr(error, "errcode", None)
    if status in (400, 403, 404) and errcode:
        return MatrixError(status, errcode, f"{server}: {getattr(error, 'message', None) or error}")
    return MatrixError(502, "M_UNKNOWN", f"Could not reach {server}: {error}")


class RemoteMembership:
    def __init__(self, hs, pdu_handler: PduHandler):
        self._hs = hs
        self._server_name = hs.config.server_name
        self._client = hs.federation_client
        self._pdus = pdu_handler

    def candidate_servers(self, room_id: str, via: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
        servers = list(dict.fromkeys([*via, *extra, server_name_of(room_id)]))
        return [s for s in servers if s and s != self._server_name]

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        server = server_name_of(alias)
        try:
            answer = await self._client.get_json(server, "/_matrix/federation/v1/query/directory",
                                                 query={"room_alias": alias})
        except Exception as error:
            if getattr(error, "status", None) == 404:
                raise MatrixError(404, "M_NOT_FOUND", f"Room alias {alias} not found") from None
            raise _remote_error(server, error) from None
        room_id = answer.get("room_id")
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise MatrixError(502, "M_UNKNOWN", f"{server} answered the alias query without a room ID")
        servers = [s for s in answer.get("servers", []) if isinstance(s, str)] \
            if isinstance(answer.get("servers"), list) else []
        return room_id, servers + [server]

    # -- join, knock and leave through a resident ---------------------------------------

    async def _make(self, kind: str, servers: list[str], room_id: str, user_id: str) -> tuple[str, dict]:
        last_error: MatrixError = MatrixError(404, "M_NOT_FOUND", "No server to join the room through")
        for server in servers:
            query = SUPPORTED_VERSIONS if kind in ("join", "knock") else None
            try:
                response = await self._client.get_json(
                    server, path_of(f"/_matrix/federation/v1/make_{kind}/", room_id, user_id), query=query)
            except Exception as error:
                log.info("make_{kind} through {server} failed: {error}", kind=kind, server=server, error=str(error))
                last_error = _remote_error(server, error)
                if last_error.status == 403:
                    raise last_error from None
                continue
            return server, response
        raise last_error

    def _build_from_template(self, response: dict, room_id: str, user_id: str, kind: str,
                             content: dict) -> Event:
        try:
            version = room_version(response.get("room_version", "1"))
        except UnsupportedRoomVersion as error:
            raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", str(error)) from None
        template = response.get("event")
        if not isinstance(template, dict) or template.get("type") != "m.room.member" \
                or template.get("room_id") != room_id or template.get("sender") != user_id \
                or template.get("state_key") != user_id \
                or (template.get("content") or {}).get("membership") != kind:
            raise MatrixError(502, "M_UNKNOWN", "The resident server sent an unusable template")
        full_content = {**content, "membership": kind}
        authoriser = (template.get("content") or {}).get("join_authorised_via_users_server")
        if authoriser:
            full_content["join_authorised_via_users_server"] = authoriser
        prev_events = [e for e in template.get("prev_events", []) if isinstance(e, str)]
        auth_events = [e for e in template.get("auth_events", []) if isinstance(e, str)]
        depth = template.get("depth") if isinstance(template.get("depth"), int) else 1
        return build_event(version, room_id=room_id, sender=user_id, event_type="m.room.member",
                           state_key=user_id, content=full_content, prev_events=prev_events,
                           auth_events=auth_events, depth=depth, origin_server_ts=self._hs.clock.time_ms(),
                           server_name=self._server_name, signing_key=self._hs.signing_key)

    async def join(self, user_id: str, room_id: str, servers: list[str], content: dict) -> Event:
        server, response = await self._make("join", servers, room_id, user_id)
        event = self._build_from_template(response, room_id, user_id, "join", content)
        version = event.room_version
        try:
            answer = await self._client.put_json(
                server, path_of("/_matrix/federation/v2/send_join/", room_id, event.event_id), event.pdu)
        except Exception as error:
            raise _remote_error(server, error) from None
        signed = answer.get("event")
        if isinstance(signed, dict) and (signed.get("content") or {}).get("join_authorised_via_users_server"):
            # A restricted join: the resident added its signature; the event ID stays the same.
            event.pdu["signatures"] = {**event.pdu.get("signatures", {}), **(signed.get("signatures") or {})}
        state_pdus = [p for p in answer.get("state", []) if isinstance(p, dict)]
        chain_pdus = [p for p in answer.get("auth_chain", []) if isinstance(p, dict)]
        await self._hs.rooms.store_room(room_id, version.identifier, user_id, False, self._hs.clock.time_ms())
        await self._pdus.store_outliers(version, room_id, state_pdus + chain_pdus)
        # Their IDs only: store_outliers has checked them, and those that failed the
        # checks were not stored, so they are not found below.
        state_ids = []
        for pdu in state_pdus:
            try:
                state_ids.append(parse_received_pdu(version, pdu, room_id)[0].event_id)
            except EventFormatError:
                continue
        events = await self._hs.events.get_events(state_ids + event.auth_event_ids)
        state = {events[e].state_tuple: e for e in state_ids if e in events and events[e].is_state()
                 and not events[e].rejected}
        if CREATE_KEY not in state:
            raise MatrixError(502, "M_UNKNOWN", "The resident server's state has no create event")
        self._check_join(version, event, state, events)
        await self._hs.room_writer.write_joined_room(event, state, {e: events[e] for e in state.values()})
        log.info("{user_id} joined {room_id} through {server} ({count} state events)", user_id=user_id,
                 room_id=room_id, server=server, count=len(state), event="remote_join")
        return event

    @staticmethod
    def _check_join(version, event: Event, state: dict, events: dict) -> None:
        auth = [events[e] for e in event.auth_event_ids if e in events]
        create = events[state[CREATE_KEY]]
        supplied = auth + ([create] if not version.create_in_auth_events else [])
        try:
            check_auth_events(version, event, supplied)
            check_auth(version, event, {k: events[v] for k, v in state.items() if v in events})
        except AuthError as error:
            raise forbidden(f"The join is not allowed by the room's state: {error}") from None

    async def leave_or_knock(self, kind: str, user_id: str, room_id: str, servers: list[str],
                             content: dict) -> tuple[Event, Any]:
        """Leave (decline an invite) or knock through a resident; returns the event and
        the resident's answer (knock: the room preview)."""
        server, response = await self._make(kind, servers, room_id, user_id)
        event = self._build_from_template(response, room_id, user_id, kind, content)
        version_path = "v2" if kind == "leave" else "v1"
        try:
            answer = await self._client.put_json(
                server, path_of(f"/_matrix/federation/{version_path}/send_{kind}/", room_id, event.event_id),
                event.pdu)
        except Exception as error:
            raise _remote_error(server, error) from None
        await self._hs.rooms.store_room(room_id, event.room_version.identifier, user_id, False,
                                        self._hs.clock.time_ms())
        self._hs.room_heads.forget(room_id)
        await self._hs.room_writer.write_outliers(room_id, [event])
        await self._hs.federation_store.record_out_of_room_membership(room_id, user_id, event.event_id, kind)
        stored = await self._hs.events.get_event(event.event_id)
        self._hs.notifier.on_user_stream("events", stored.stream_ordering or 0, user_id)
        return event, answer

    # -- inviting users of other servers ------------------------------------------------

    async def invite(self, sender: str, room_id: str, target: str, content: dict) -> Event:
        """Have the invitee's server countersign the invite, then take it into the room."""
        event = await self._hs.event_sender.build_unsent(sender, room_id, "m.room.member", content,
                                                         state_key=target)
        head = await self._hs.room_heads.get(room_id)
        invite_state = await self._invite_room_state(head)
        destination = server_name_of(target)
        body = {"room_version": event.room_version.identifier, "event": event.pdu, "invite_room_state": invite_state}
        try:
            answer = await self._client.put_json(
                destination, path_of("/_matrix/federation/v2/invite/", room_id, event.event_id), body)
        except Exception as error:
            raise _remote_error(destination, error) from None
        signed = answer.get("event")
        if not isinstance(signed, dict):
            raise MatrixError(502, "M_UNKNOWN", f"{destination} answered the invite without the event")
        try:
            countersigned = await self._pdus.check_pdu(event.room_version, signed, room_id)
        except PduRefused as refused:
            raise MatrixError(502, "M_UNKNOWN", f"{destination} returned a bad invite: {refused}") from None
        if countersigned.event_id != event.event_id or destination not in countersigned.pdu.get("signatures", {}):
            raise MatrixError(502, "M_UNKNOWN", f"{destination} did not sign the invite")
        stored = await self._hs.event_ingester.ingest(countersigned)
        if stored.rejected or stored.soft_failed:
            raise forbidden(f"The invite was refused: {stored.rejected_reason or 'by the current state'}")
        return stored

    async def _invite_room_state(self, head) -> list[dict]:
        ids = stripped_state_ids(head.state)
        loaded = await self._hs.events.get_events(ids)
        # Spec 1.16: the create event goes whole, the rest stripped.
        return [loaded[i].pdu if loaded[i].type == "m.room.create" else stripped_event(loaded[i])
                for i in ids if i in loaded]
