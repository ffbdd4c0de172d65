"""Moderating a Drocsid server: bans, kicks, leaving, and reading the audit log.

A ban or kick is an ``m.room.member`` ban or leave (with the reason) in the server's
space and in every one of its channel rooms (DESIGN.md §2), so plain Matrix servers
enforce it too: a banned user cannot join any of them again, by any face, until unbanned.
The space's membership is the record (the ban list and the audit log read it).

Each event is sent by the moderator when Matrix auth lets them (their power level in
that room), else by the owner (who holds PL 100 everywhere) with the moderator named in
``io.drocsid.actor``. Permission checks (the Drocsid bits and the role hierarchy) are
the caller's.
"""

from __future__ import annotations

from twisted.logger import Logger

from homeserver.drocsid import audit_log
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.roles import sync_power_levels
from homeserver.drocsid.server_state import Server, load_room_state, load_server
from homeserver.drocsid.servers import _send_as
from homeserver.http.errors import MatrixError

log = Logger(namespace="drocsid.moderation")

_IN = ("join", "invite", "knock")


async def send_for(hs, actor: str, owner_id: str, room_id: str, event_type: str, content: dict,
                   state_key: str | None = "") -> None:
    """Send as the actor; when Matrix auth refuses them, as the owner naming the actor."""
    await _send_as(hs, actor, owner_id, room_id, event_type, content, state_key)


async def _forget_member(hs, actor: str, server: Server, target: str) -> None:
    """Someone kicked, banned or gone keeps no roles (a return starts afresh) and drops
    out of the power-level mirror."""
    if server.member_roles.get(target) or server.state.has(perms.MEMBER_EVENT, perms.member_state_key(target)):
        await send_for(hs, actor, server.owner_id, server.room_id, perms.MEMBER_EVENT, {},
                       perms.member_state_key(target))
    fresh = await load_server(hs, server.room_id)
    if fresh is not None:
        await sync_power_levels(hs, fresh, actor)


def _rooms(server: Server) -> list[tuple[str, dict[str, str]]]:
    """(room ID, memberships) of the space and then each of its channels."""
    return [(server.room_id, server.state.memberships)] + [(c.room_id, c.state.memberships) for c in server.channels]


async def _set_membership(hs, actor: str, server: Server, target: str, membership: str, reason: str | None,
                          when) -> int:
    """Send ``membership`` for the target in each room of the server where ``when(current)``
    holds; the space must succeed, a channel that cannot be changed is logged and skipped."""
    content = {"membership": membership}
    if reason:
        content["reason"] = reason
    changed = 0
    for room_id, memberships in _rooms(server):
        if not when(memberships.get(target)):
            continue
        try:
            await send_for(hs, actor, server.owner_id, room_id, "m.room.member", content, target)
            changed += 1
        except MatrixError as error:
            if room_id == server.room_id:
                raise
            log.warn("could not set {membership} for {user} in {room}: {error}", membership=membership,
                     user=target, room=room_id, error=error)
    return changed


async def ban(hs, actor: str, server: Server, target: str, reason: str | None) -> None:
    await _set_membership(hs, actor, server, target, "ban", reason, lambda current: current != "ban")
    await _forget_member(hs, actor, server, target)


async def unban(hs, actor: str, server: Server, target: str) -> None:
    await _set_membership(hs, actor, server, target, "leave", None, lambda current: current == "ban")


async def kick(hs, actor: str, server: Server, target: str, reason: str | None) -> None:
    await _set_membership(hs, actor, server, target, "leave", reason, lambda current: current in _IN)
    await _forget_member(hs, actor, server, target)


async def leave(hs, user_id: str, server: Server) -> None:
    """The user leaves every channel and then the space."""
    for channel in server.channels:
        if channel.state.memberships.get(user_id) in _IN:
            try:
                await hs.membership.leave(user_id, channel.room_id)
            except MatrixError as error:
                log.warn("could not leave {room}: {error}", room=channel.room_id, error=error)
    await hs.membership.leave(user_id, server.room_id)
    await _forget_member(hs, user_id, server, user_id)


async def bans(hs, server: Server) -> list[dict]:
    """The space's banned members, oldest ban first."""
    state = await load_room_state(hs, server.room_id, {"m.room.member"})
    from homeserver.api.users import iso_timestamp

    found = []
    for (_type, user_id), event in state.events.items():
        if event.membership == "ban":
            reason = event.content.get("reason")
            found.append((event.origin_server_ts, user_id, {
                "user_id": user_id, "reason": reason if isinstance(reason, str) and reason else None,
                "banned_by": audit_log.actor_of(event, server.owner_id),
                "created_at": iso_timestamp(event.origin_server_ts)}))
    return [body for _ts, _user, body in sorted(found, key=lambda f: (f[0], f[1]))]


# --- the audit log -----------------------------------------------------------------

# Bounds on one read: events scanned per query and queries per request.
AUDIT_PAGE = 200
AUDIT_MAX_PAGES = 10
_CREATION_EVENTS = 40  # room creation is a dozen events; this is a generous bound


async def server_rooms(hs, server: Server) -> dict[str, audit_log.RoomInfo]:
    """Every room that is or was a channel or category of the server (deleted ones too):
    linked from the space or one of its categories at some point, and naming the space
    as its parent. With how each was created and its name now. A handful of queries
    whatever the size (room heads are cached)."""
    space = server.room_id
    linked: dict[str, int] = {}  # room -> stream ordering of the first link to it
    for _parent, room_id, first in await hs.events.state_keys_ever([space], "m.space.child"):
        linked[room_id] = min(first, linked.get(room_id, first))
    for _parent, room_id, first in await hs.events.state_keys_ever(sorted(linked), "m.space.child"):
        linked[room_id] = min(first, linked.get(room_id, first))
    rooms, names = [], {}
    for room_id in sorted(set(linked) - {space}):
        head = await hs.room_heads.get(room_id)
        if head is not None and ("m.space.parent", space) in head.state:
            rooms.append(room_id)
            if ("m.room.name", "") in head.state:
                names[room_id] = head.state[("m.room.name", "")]
    name_events = await hs.events.get_events(names.values())
    first = await hs.events.first_events([space, *rooms], _CREATION_EVENTS)
    # The space was made before its first channel was created.
    creates = [events[0].stream_ordering for room_id, events in first.items()
               if room_id != space and events and events[0].type == "m.room.create"]
    infos = {}
    for room_id in [space, *rooms]:
        made_before = min(creates, default=None) if room_id == space else linked.get(room_id)
        made = audit_log.creation_events(first.get(room_id, []), made_before)
        if made is None:
            continue
        name_event = name_events.get(names.get(room_id, ""))
        name = name_event.content.get("name") if name_event is not None else None
        infos[room_id] = audit_log.RoomInfo(room_id, room_id == space, made.creation, made.name, made.kind,
                                            name if isinstance(name, str) else None)
    return infos


async def read_audit_log(hs, server: Server, query: audit_log.AuditQuery, *, before_stream: int | None = None,
                         after_stream: int | None = None, before_ts: int | None = None,
                         after_ts: int | None = None) -> list[audit_log.AuditEntry]:
    """Entries newest first, filtered by ``query``; scans at most
    ``AUDIT_PAGE * AUDIT_MAX_PAGES`` events, so a very narrow filter may return fewer."""
    rooms = await server_rooms(hs, server)
    cursor = before_stream
    for _page in range(AUDIT_MAX_PAGES):
        rows = await hs.events.state_history(sorted(rooms), before_stream=cursor, after_stream=after_stream,
                                             before_ts=before_ts, after_ts=after_ts, limit=AUDIT_PAGE)
        previous = await hs.events.get_events([p for _e, p in rows if p])
        redacted = await hs.events.get_events([e.redacts for e, _p in rows if e.type == "m.room.redaction"
                                               and e.redacts])
        for event, prev_id in rows:
            target = redacted.get(event.redacts) if event.type == "m.room.redaction" else None
            entry = audit_log.entry_for(event, previous.get(prev_id) if prev_id else None, rooms[event.room_id],
                                        server.owner_id, target)
            if query.add(entry):
                return query.entries
        if len(rows) < AUDIT_PAGE:
            break
        cursor = rows[-1][0].stream_ordering
    return query.entries
