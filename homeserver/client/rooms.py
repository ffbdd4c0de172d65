"""Rooms over the client-server API: createRoom, membership, send, state, redact, reads."""

from __future__ import annotations

from homeserver.events.room_versions import UnsupportedRoomVersion, room_version
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.http.request import field, parse_json_object, query_str
from homeserver.http.router import CLIENT_PREFIX, Router

MAX_TXN_ID_LENGTH = 255


def _user_id_param(body: dict) -> str:
    user_id = field(body, "user_id", str)
    if not user_id.startswith("@") or ":" not in user_id:
        raise invalid_param("'user_id' must be a user ID")
    return user_id


def _via(request) -> list[str]:
    """Servers to join through: ``via`` (and the older ``server_name``) query parameters."""
    values = request.args.get(b"via", []) + request.args.get(b"server_name", [])
    return [v.decode("utf-8", "replace") for v in values]


def _reason(body: dict) -> str | None:
    return field(body, "reason", str, None)


def _massaged_ts(request, requester) -> int | None:
    """``?ts=``: an application service sets the event's origin_server_ts (timestamp
    massaging, for bridged history); ignored from anyone else."""
    if requester.appservice_id is None or not request.args.get(b"ts"):
        return None
    raw = request.args[b"ts"][0].decode("ascii", "replace")
    if not raw.isdigit() or len(raw) > 15:
        raise invalid_param("'ts' must be a timestamp in milliseconds")
    return int(raw)


def _check_txn_id(txn_id: str) -> None:
    if not txn_id or len(txn_id) > MAX_TXN_ID_LENGTH:
        raise invalid_param("Invalid transaction ID")


def _parse_initial_state(raw) -> list[dict]:
    if not isinstance(raw, list):
        raise invalid_param("'initial_state' must be a list")
    entries = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise invalid_param("each initial_state entry needs a 'type'")
        if not isinstance(entry.get("content", {}), dict) or not isinstance(entry.get("state_key", ""), str):
            raise invalid_param("initial_state entries need object 'content' and string 'state_key'")
        entries.append(entry)
    return entries


def register_routes(router: Router, hs) -> None:
    async def create_room(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        version_id = field(body, "room_version", str, hs.config.rooms.default_version)
        try:
            version = room_version(version_id)
        except UnsupportedRoomVersion:
            raise MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION", f"Room version {version_id} is not supported")
        visibility = field(body, "visibility", str, "private")
        if visibility not in ("public", "private"):
            raise invalid_param("'visibility' must be public or private")
        invite = field(body, "invite", list, [])
        if not all(isinstance(u, str) and u.startswith("@") and ":" in u for u in invite):
            raise invalid_param("'invite' must list user IDs")
        power_override = field(body, "power_level_content_override", dict, None)
        alias_localpart = field(body, "room_alias_name", str, None)
        if alias_localpart is not None:
            from appservice.loading import check_alias_not_claimed
            check_alias_not_claimed(hs.appservices, f"#{alias_localpart}:{hs.config.server_name}",
                                    requester.appservice_id)
        room_id = await hs.room_creator.create_room(
            requester.user_id, version=version, preset=field(body, "preset", str, None), visibility=visibility,
            name=field(body, "name", str, None), topic=field(body, "topic", str, None), invite=invite,
            initial_state=_parse_initial_state(field(body, "initial_state", list, [])),
            creation_content=field(body, "creation_content", dict, None),
            power_level_content_override=power_override,
            alias_localpart=alias_localpart,
            is_direct=field(body, "is_direct", bool, False))
        return 200, {"room_id": room_id}

    async def join_by_id_or_alias(request, room):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        room_id = await hs.membership.join(requester.user_id, room, _reason(body), servers=_via(request))
        return 200, {"room_id": room_id}

    async def knock(request, room):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        return 200, {"room_id": await hs.membership.knock(requester.user_id, room, _reason(body),
                                                          servers=_via(request))}

    async def join(request, room_id):
        return await join_by_id_or_alias(request, room_id)

    async def leave(request, room_id):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        await hs.membership.leave(requester.user_id, room_id, _reason(body))
        return 200, {}

    async def forget(request, room_id):
        requester = await hs.auth.authenticate(request)
        await hs.membership.forget(requester.user_id, room_id)
        return 200, {}

    def membership_action(action):
        async def handler(request, room_id):
            requester = await hs.auth.authenticate(request)
            body = parse_json_object(request)
            await getattr(hs.membership, action)(requester.user_id, room_id, _user_id_param(body), _reason(body))
            return 200, {}
        handler.__name__ = action
        return handler

    async def send(request, room_id, event_type, txn_id):
        requester = await hs.auth.authenticate(request)
        _check_txn_id(txn_id)
        content = parse_json_object(request)
        txn = (requester.user_id, requester.device_id, f"send/{room_id}/{event_type}/{txn_id}")
        event = await hs.event_sender.send(requester.user_id, room_id, event_type, content, client_txn=txn,
                                           origin_server_ts=_massaged_ts(request, requester))
        return 200, {"event_id": event.event_id}

    async def put_state(request, room_id, event_type, state_key=""):
        requester = await hs.auth.authenticate(request)
        content = parse_json_object(request, allow_empty=True)
        event = await hs.event_sender.send(requester.user_id, room_id, event_type, content, state_key=state_key,
                                           origin_server_ts=_massaged_ts(request, requester))
        return 200, {"event_id": event.event_id}

    async def put_state_empty_key(request, room_id, event_type):
        return await put_state(request, room_id, event_type, "")

    async def get_state_event(request, room_id, event_type, state_key=""):
        requester = await hs.auth.authenticate(request)
        event = await hs.room_reader.get_state_event(requester.user_id, room_id, event_type, state_key)
        if query_str(request, "format") == "event":
            from homeserver.events.client_format import client_event
            return 200, client_event(event, hs.clock.time_ms())
        return 200, event.content

    async def get_state_event_empty_key(request, room_id, event_type):
        return await get_state_event(request, room_id, event_type, "")

    async def get_state(request, room_id):
        requester = await hs.auth.authenticate(request)
        return 200, await hs.room_reader.get_state(requester.user_id, room_id)

    async def redact(request, room_id, event_id, txn_id):
        requester = await hs.auth.authenticate(request)
        _check_txn_id(txn_id)
        body = parse_json_object(request, allow_empty=True)
        reason = _reason(body)
        target = await hs.events.get_event(event_id)
        if target is None or target.room_id != room_id:
            raise not_found("Event not found")
        head = await hs.room_heads.get(room_id)
        if target.sender != requester.user_id and not await hs.power.can(requester.user_id, room_id, "redact"):
            raise forbidden("You may not redact other users' events")
        content = {"reason": reason} if reason else {}
        if head.version.redacts_in_content:
            content["redacts"] = event_id
        txn = (requester.user_id, requester.device_id, f"redact/{room_id}/{event_id}/{txn_id}")
        event = await hs.event_sender.send(requester.user_id, room_id, "m.room.redaction", content,
                                           redacts=event_id, client_txn=txn)
        return 200, {"event_id": event.event_id}

    async def get_event(request, room_id, event_id):
        requester = await hs.auth.authenticate(request)
        return 200, await hs.room_reader.get_event(requester.user_id, room_id, event_id)

    async def joined_rooms(request):
        requester = await hs.auth.authenticate(request)
        return 200, {"joined_rooms": await hs.rooms.get_rooms_for_user(requester.user_id)}

    async def joined_members(request, room_id):
        requester = await hs.auth.authenticate(request)
        return 200, {"joined": await hs.room_reader.get_joined_members(requester.user_id, room_id)}

    async def members(request, room_id):
        requester = await hs.auth.authenticate(request)
        chunk = await hs.room_reader.get_members(requester.user_id, room_id, query_str(request, "membership"),
                                                 query_str(request, "not_membership"))
        return 200, {"chunk": chunk}

    P = CLIENT_PREFIX
    router.add("POST", f"{P}/createRoom", create_room)
    router.add("POST", f"{P}/join/{{room}}", join_by_id_or_alias)
    router.add("POST", f"{P}/rooms/{{room_id}}/join", join)
    router.add("POST", f"{P}/knock/{{room}}", knock)
    router.add("POST", f"{P}/rooms/{{room_id}}/leave", leave)
    router.add("POST", f"{P}/rooms/{{room_id}}/forget", forget)
    for action in ("invite", "kick", "ban", "unban"):
        router.add("POST", f"{P}/rooms/{{room_id}}/{action}", membership_action(action))
    router.add("PUT", f"{P}/rooms/{{room_id}}/send/{{event_type}}/{{txn_id}}", send)
    router.add("PUT", f"{P}/rooms/{{room_id}}/state/{{event_type}}/{{state_key}}", put_state)
    router.add("PUT", f"{P}/rooms/{{room_id}}/state/{{event_type}}", put_state_empty_key)
    router.add("PUT", f"{P}/rooms/{{room_id}}/state/{{event_type}}/", put_state_empty_key)
    router.add("GET", f"{P}/rooms/{{room_id}}/state/{{event_type}}/", get_state_event_empty_key)
    router.add("GET", f"{P}/rooms/{{room_id}}/state/{{event_type}}/{{state_key}}", get_state_event)
    router.add("GET", f"{P}/rooms/{{room_id}}/state/{{event_type}}", get_state_event_empty_key)
    router.add("GET", f"{P}/rooms/{{room_id}}/state", get_state)
    router.add("PUT", f"{P}/rooms/{{room_id}}/redact/{{event_id}}/{{txn_id}}", redact)
    router.add("GET", f"{P}/rooms/{{room_id}}/event/{{event_id}}", get_event)
    router.add("GET", f"{P}/joined_rooms", joined_rooms)
    router.add("GET", f"{P}/rooms/{{room_id}}/joined_members", joined_members)
    router.add("GET", f"{P}/rooms/{{room_id}}/members", members)
