"""The resident side of membership handshakes: other servers' users joining, leaving and
knocking on our rooms (``make_*`` gives a template, ``send_*`` takes the signed event),
and invites of our users into rooms elsewhere (``/v2/invite``)."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from federation.pdu_handler import PduHandler, PduRefused
from homeserver.events.auth_events import auth_types_for_event
from homeserver.events.auth_rules import AuthError, check_auth
from homeserver.events.client_format import stripped_event, stripped_state_ids
from homeserver.events.event import Event
from homeserver.events.received import parse_received_pdu, server_name_of
from homeserver.events.room_versions import UnsupportedRoomVersion, room_version
from homeserver.events.signing import countersign_event, sign_event
from homeserver.events.validation import EventFormatError
from homeserver.handlers.room_writer import CREATE_KEY
from homeserver.http.errors import MatrixError, bad_json, forbidden, not_found
from homeserver.http.request import query_bool
from homeserver.http.router import Router
from storage.stores.federation import FederationStore

log = Logger(namespace="drocsid.federation.membership")



def incompatible_version(version: str) -> MatrixError:
    return MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION", f"Room version {version} is not supported by the"
                       " requesting server", room_version=version)


class RelayedEvents:
    """Membership events handed to us by their own server, which we pass on."""

    def __init__(self, store: FederationStore):
        self._store = store
        self._origins: dict[str, str] = {}

    async def add(self, event: Event, origin: str) -> None:
        self._origins[event.event_id] = origin
        await self._store.record_relayed(event.event_id, event.room_id, origin)

    def is_relayed(self, event_id: str) -> bool:
        return event_id in self._origins

    def origin_of(self, event_id: str) -> str | None:
        return self._origins.get(event_id)


class MembershipServer:
    def __init__(self, hs, pdu_handler: PduHandler, relay: RelayedEvents):
        self._hs = hs
        self._server_name = hs.config.server_name
        self._pdus = pdu_handler
        self._relay = relay
        self._heads = hs.room_heads
        self._events = hs.events

    # -- make_* ---------------------------------------------------------------------------

    async def make_membership(self, origin: str, room_id: str, user_id: str, membership: str,
                              versions: list[str] | None) -> dict:
        if server_name_of(user_id) != origin:
            raise forbidden("The user does not belong to the requesting server")
        head = await self._heads.get(room_id)
        if head is None or not head.extremities:
            raise not_found("Unknown room")
        version = head.version
        if versions is not None and version.identifier not in versions:
            raise incompatible_version(version.identifier)
        content: dict[str, Any] = {"membership": membership}
        if membership == "join":
            authoriser = await self._restricted_join_authoriser(head, user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        keys = auth_types_for_event(version, "m.room.member", user_id, user_id, content)
        auth_ids = [head.state[k] for k in keys if k in head.state]
        template = {"type": "m.room.member", "room_id": room_id, "sender": user_id, "state_key": user_id,
                    "content": content, "prev_events": list(head.extremities[:20]), "auth_events": auth_ids,
                    "depth": head.max_depth + 1, "origin_server_ts": self._hs.clock.time_ms(), "origin": origin}
        # Would the rules allow it? Answer 403 now rather than on send_*.
        probe_pdu = dict(template)
        # Signed by us, as the event will be when a restricted join comes back through here.
        sign_event(version, probe_pdu, self._server_name, self._hs.signing_key)
        probe = Event(probe_pdu, version, "$probe")
        state = await self._auth_state(head, keys)
        try:
            check_auth(version, probe, state)
        except AuthError as error:
            raise forbidden(f"You are not allowed to {membership} this room: {error}") from None
        return {"room_version": version.identifier, "event": template}

    async def _auth_state(self, head, keys) -> dict:
        wanted = {k: head.state[k] for k in [*keys, CREATE_KEY] if k in head.state}
        loaded = await self._events.get_events(wanted.values())
        return {k: loaded[v] for k, v in wanted.items() if v in loaded}

    async def _restricted_join_authoriser(self, head, user_id: str) -> str | None:
        """For a restricted room: one of our users who may invite, when the joiner is in
        one of the allowed rooms; None when the join rule is not restricted, the user is
        already invited or joined, or (knock_restricted) may only knock. 400
        M_UNABLE_TO_AUTHORISE_JOIN / M_UNABLE_TO_GRANT_JOIN when no one can vouch."""
        restricted = await self._hs.membership.restricted_join(head.room_id, user_id)
        if restricted is None:
            return None
        if not restricted.in_allowed_room:
            if restricted.rule == "knock_restricted":
                return None
            raise MatrixError(400, "M_UNABLE_TO_AUTHORISE_JOIN", "The user is in none of the rooms that allow"
                              " joining")
        if restricted.authoriser is None:
            raise MatrixError(400, "M_UNABLE_TO_GRANT_JOIN", "No user of this server can authorise the join")
        return restricted.authoriser

    # -- send_* ---------------------------------------------------------------------------

    async def send_membership(self, origin: str, room_id: str, event_id: str, pdu: Any, membership: str) -> Event:
        head = await self._heads.get(room_id)
        if head is None or not head.extremities:
            raise not_found("Unknown room")
        try:
            event, _hash_ok = parse_received_pdu(head.version, pdu, room_id)
        except EventFormatError as error:
            raise bad_json(f"Malformed event: {error}") from None
        if event.event_id != event_id:
            raise bad_json("The event ID in the path does not match the event")
        if event.type != "m.room.member" or event.membership != membership:
            raise bad_json(f"Expected an m.room.member event with membership {membership}")
        if event.state_key != event.sender or server_name_of(event.sender) != origin:
            raise forbidden("The event must be the requesting server's user's own membership")
        authoriser = event.content.get("join_authorised_via_users_server")
        if membership == "join" and isinstance(authoriser, str) and server_name_of(authoriser) == self._server_name:
            # We vouched for this join in make_join: our signature is part of its proof.
            pdu = dict(pdu)
            countersign_event(head.version, pdu, self._server_name, self._hs.signing_key)
        try:
            event = await self._pdus.check_pdu(head.version, pdu, room_id)
        except PduRefused as refused:
            raise forbidden(str(refused)) from None
        await self._relay.add(event, origin)
        try:
            stored = await self._pdus.process(origin, event)
        except PduRefused as refused:
            raise forbidden(str(refused)) from None
        if stored.rejected or stored.soft_failed:
            raise forbidden(f"The {membership} is not allowed: {stored.rejected_reason or 'refused by current state'}")
        return stored

    async def join_response(self, event: Event) -> dict:
        state = await self._hs.event_ingester.state_before_event(event)
        chain_ids = await self._events.get_auth_chain_ids(list(state.values()) + [event.event_id])
        events = await self._events.get_events(list(state.values()) + list(chain_ids))
        servers = await self._hs.federation_store.servers_in_room(event.room_id)
        return {"state": [events[e].pdu for e in state.values() if e in events],
                "auth_chain": [events[e].pdu for e in sorted(chain_ids) if e in events],
                "event": event.pdu, "members_omitted": False, "servers_in_room": sorted(servers),
                "origin": self._server_name}

    async def knock_state(self, event: Event) -> list[dict]:
        head = await self._heads.get(event.room_id)
        ids = stripped_state_ids(head.state)
        loaded = await self._events.get_events(ids)
        return [stripped_event(loaded[i]) for i in ids if i in loaded]

    # -- invites of our users -----------------------------------------------------------

    async def on_invite(self, origin: str, room_id: str, event_id: str, body: dict) -> dict:
        version_id = body.get("room_version", "1")
        try:
            version = room_version(version_id)
        except UnsupportedRoomVersion:
            raise incompatible_version(str(version_id)) from None
        pdu = body.get("event")
        try:
            event, _hash_ok = parse_received_pdu(version, pdu, room_id)
        except EventFormatError as error:
            raise bad_json(f"Malformed event: {error}") from None
        if event.event_id != event_id:
            raise bad_json("The event ID in the path does not match the event")
        if event.type != "m.room.member" or event.membership != "invite" or not event.state_key:
            raise bad_json("Expected an m.room.member invite")
        if server_name_of(event.state_key) != self._server_name:
            raise forbidden("The invitee is not a user of this server")
        if server_name_of(event.sender) != origin:
            raise forbidden("The inviter does not belong to the requesting server")
        if await self._hs.users.get_user(event.state_key) is None:
            raise not_found("Unknown user")
        try:
            event = await self._pdus.check_pdu(version, pdu, room_id)
        except PduRefused as refused:
            raise forbidden(str(refused)) from None
        ignored = await self._hs.sync.ignored_users(event.state_key)
        if event.sender in ignored:
            raise forbidden("The invitee does not accept invites from this user")
        countersign_event(version, event.pdu, self._server_name, self._hs.signing_key)
        invite_state = [s for s in body.get("invite_room_state", []) if isinstance(s, dict)] \
            if isinstance(body.get("invite_room_state"), list) else []
        await self.record_invite(event, invite_state)
        return {"event": event.pdu}

    async def record_invite(self, event: Event, invite_state: list[dict]) -> None:
        """Keep an invite into a room; when we are not in it, as an outlier with the
        room preview the inviting server sent, so the invitee's sync shows it."""
        head = await self._heads.get(event.room_id)
        if head is not None and head.extremities:
            return  # we are in the room: the invite reaches us through the DAG as well
        preview = [self._strip(s) for s in invite_state] + [stripped_event(event)]
        # The room row first: stored events are read back with their room's version.
        await self._hs.federation_store.store_remote_invite(event.room_id, event.room_version.identifier,
                                                            event.state_key, event.event_id, preview)
        self._heads.forget(event.room_id)
        await self._hs.room_writer.write_outliers(event.room_id, [event])
        stored = await self._events.get_event(event.event_id)
        self._hs.notifier.on_user_stream("events", stored.stream_ordering or 0, event.state_key)

    @staticmethod
    def _strip(state: dict) -> dict:
        return {k: state[k] for k in ("type", "state_key", "sender", "content") if k in state}


def _versions(request) -> list[str]:
    values = request.args.get(b"ver")
    return [v.decode("utf-8", "replace") for v in values] if values else ["1"]


def register_routes(router: Router, hs, authenticated, membership: MembershipServer) -> None:
    v1, v2 = "/_matrix/federation/v1", "/_matrix/federation/v2"

    def make(kind: str):
        async def handler(request, origin, room_id, user_id):
            versions = _versions(request) if kind in ("join", "knock") else None
            return 200, await membership.make_membership(origin, room_id, user_id, kind, versions)
        handler.__name__ = f"make_{kind}"
        return handler

    async def send_join(request, origin, room_id, event_id, body):
        event = await membership.send_membership(origin, room_id, event_id, body, "join")
        # omit_members is accepted and ignored: the full state is always sent.
        query_bool(request, "omit_members")
        return 200, await membership.join_response(event)

    async def send_join_v1(request, origin, room_id, event_id, body):
        event = await membership.send_membership(origin, room_id, event_id, body, "join")
        return 200, [200, await membership.join_response(event)]

    async def send_leave(request, origin, room_id, event_id, body):
        await membership.send_membership(origin, room_id, event_id, body, "leave")
        return 200, {}

    async def send_knock(request, origin, room_id, event_id, body):
        event = await membership.send_membership(origin, room_id, event_id, body, "knock")
        return 200, {"knock_room_state": await membership.knock_state(event)}

    async def invite(request, origin, room_id, event_id, body):
        return 200, await membership.on_invite(origin, room_id, event_id, body)

    for kind in ("join", "leave", "knock"):
        router.add("GET", f"{v1}/make_{kind}/{{room_id}}/{{user_id}}", authenticated(make(kind), room_scoped=True))
    router.add("PUT", v2 + "/send_join/{room_id}/{event_id}", authenticated(send_join, room_scoped=True,
                                                                             with_body=True))
    router.add("PUT", v1 + "/send_join/{room_id}/{event_id}", authenticated(send_join_v1, room_scoped=True,
                                                                             with_body=True))
    router.add("PUT", v2 + "/send_leave/{room_id}/{event_id}", authenticated(send_leave, room_scoped=True,
                                                                              with_body=True))
    router.add("PUT", v1 + "/send_knock/{room_id}/{event_id}", authenticated(send_knock, room_scoped=True,
                                                                              with_body=True))
    router.add("PUT", v2 + "/invite/{room_id}/{event_id}", authenticated(invite, room_scoped=True, with_body=True))
