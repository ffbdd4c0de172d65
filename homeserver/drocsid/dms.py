"""Direct messages and group DMs on Matrix rooms (DESIGN.md §2 row "direct message, group DM").

- A DM is a private room (join rule ``invite``, no space parent) created with
  ``is_direct`` invites and recorded in the members' ``m.direct`` account data. We also
  put a state event ``io.drocsid.dm`` ``{"group": bool}`` in it at creation, so every
  instance (and we, later) can tell a 1:1 DM from a group DM without a client's
  account data; a room a Matrix client made a DM (only in ``m.direct``) counts too.
- A local recipient is invited and joined at once (as in Discord, a DM needs no
  acceptance); a recipient on another server gets an ``is_direct`` invite their client
  accepts. ``POST /dms`` with someone who invited you to a DM joins that room.
- A group DM holds at most 10 members (joined or invited); any member may add one.
- Closing a DM leaves the room; it stays in ``m.direct`` (as Matrix clients keep it)
  so that opening the DM again, from either side, brings the one who closed it back
  into the same room with its history.
- Blocks (``m.ignored_user_list``) in either direction stop opening a DM, adding to a
  group DM and sending in a 1:1 DM.
"""

from __future__ import annotations

from homeserver.drocsid import permissions as perms
from homeserver.drocsid import relationships as rel
from homeserver.drocsid.server_state import Channel, load_room_state
from homeserver.handlers.filtering import parse_event_filter
from homeserver.http.errors import forbidden, invalid_param, not_found

DM_EVENT = "io.drocsid.dm"
DIRECT = "m.direct"
MAX_GROUP_MEMBERS = 10
_STATE_TYPES = frozenset({"m.room.create", DM_EVENT, "m.room.member", "m.space.parent"})
_MESSAGE_FILTER = parse_event_filter({"types": ["m.room.message"]})

# What a member may do in a DM: talk, react, attach; no moderation of the other's messages.
DM_BITS = (perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES | perms.P.READ_MESSAGE_HISTORY | perms.P.ADD_REACTIONS
           | perms.P.ATTACH_FILES | perms.P.EMBED_LINKS)
_BLOCKED_BITS = perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY


# -- m.direct -----------------------------------------------------------------------

async def _direct(hs, user_id: str) -> dict[str, list[str]]:
    content = await hs.account_data.get(user_id, "", DIRECT) or {}
    return {k: [r for r in v if isinstance(r, str)] for k, v in content.items() if isinstance(v, list)}


async def _record_direct(hs, user_id: str, others: list[str], room_id: str) -> None:
    if not rel.is_local(hs, user_id):
        return
    direct = await _direct(hs, user_id)
    changed = False
    for other in others:
        rooms = direct.setdefault(other, [])
        if room_id not in rooms:
            rooms.append(room_id)
            changed = True
    if changed:
        await hs.account_data_handler.put(user_id, "", DIRECT, direct)


# -- reading ------------------------------------------------------------------------

class _Dm:
    """One DM room as its current state says it is."""

    def __init__(self, state, kind: str):
        self.state = state
        self.kind = kind               # "dm" or "group_dm"
        self.room_id = state.room_id

    def members(self) -> list[str]:
        """Joined and invited users: the ones who count towards the group limit."""
        return sorted(u for u, m in self.state.memberships.items() if m in ("join", "invite"))

    def membership(self, user_id: str) -> str | None:
        return self.state.memberships.get(user_id)

    def display_name(self, user_id: str) -> str:
        event = self.state.events.get(("m.room.member", user_id))
        name = event.content.get("displayname") if event is not None else None
        return name if isinstance(name, str) else rel.localpart(user_id)


async def _load(hs, room_id: str, user_id: str, direct_rooms: set[str] | None = None) -> _Dm | None:
    """The DM ``room_id`` is, or None if it is not a DM (for this user)."""
    head = await hs.room_heads.get(room_id)
    if head is None or not head.extremities:
        return None
    marked = (DM_EVENT, "") in head.state
    if not marked:
        if any(t == "m.space.parent" for t, _ in head.state):
            return None  # a server's channel
        if direct_rooms is None:
            direct_rooms = {r for rooms in (await _direct(hs, user_id)).values() for r in rooms}
        if room_id not in direct_rooms:
            return None
    state = await load_room_state(hs, room_id, _STATE_TYPES)
    if state is None or state.room_type is not None:
        return None  # spaces and voice rooms are not DMs
    if marked:
        return _Dm(state, "group_dm" if state.content(DM_EVENT).get("group") is True else "dm")
    members = [u for u, m in state.memberships.items() if m in ("join", "invite")]
    return _Dm(state, "group_dm" if len(members) > 2 else "dm")


async def _last_message(hs, user_id: str, room_id: str):
    """The newest live message event of the room the user may see, or None."""
    chunk, _ = await hs.room_reader.paginate(user_id, room_id, hs.notifier.events_position + 1, True, 20, None,
                                             _MESSAGE_FILTER)
    for event, redaction in chunk:
        relates = event.content.get("m.relates_to")
        if redaction is None and not event.is_state() and not event.rejected and not event.soft_failed \
                and not (isinstance(relates, dict) and relates.get("rel_type") == "m.replace"):
            return event
    return None


async def dm_object(hs, dm: _Dm, user_id: str, last=False) -> dict:
    if last is False:
        last = await _last_message(hs, user_id, dm.room_id)
    return {"id": dm.room_id, "type": dm.kind,
            "recipients": [{"id": u, "display_name": dm.display_name(u)} for u in dm.members() if u != user_id],
            "last_message_id": last.event_id if last is not None else None}


async def list_dms(hs, user_id: str) -> list[dict]:
    """The user's open DMs and group DMs (rooms they are joined to), newest activity first."""
    direct_rooms = {r for rooms in (await _direct(hs, user_id)).values() for r in rooms}
    found = []
    for room_id in await hs.rooms.get_rooms_for_user(user_id):
        dm = await _load(hs, room_id, user_id, direct_rooms)
        if dm is None:
            continue
        last = await _last_message(hs, user_id, room_id)
        create = dm.state.create
        order = last.stream_ordering if last is not None else (create.stream_ordering or 0)
        found.append((order or 0, await dm_object(hs, dm, user_id, last)))
    found.sort(key=lambda item: (-item[0], item[1]["id"]))
    return [body for _, body in found]


async def joined_dm(hs, room_id: str, user_id: str) -> _Dm:
    """A DM the user is in (joined); 404 otherwise."""
    dm = await _load(hs, room_id, user_id) if isinstance(room_id, str) and room_id.startswith("!") else None
    if dm is None or dm.membership(user_id) != "join":
        raise not_found("Unknown DM")
    return dm


async def get_dm(hs, room_id: str, user_id: str) -> dict:
    return await dm_object(hs, await joined_dm(hs, room_id, user_id), user_id)


class DmPermissions:
    """Stands in for a server in ``homeserver.drocsid.messages.Messages``: a DM has no
    roles, its members have fixed rights."""

    def __init__(self, room_id: str, bits: int):
        self.room_id = room_id
        self.bits = bits

    def channel_permissions(self, user_id: str, channel) -> int:
        return self.bits


async def dm_channel(hs, room_id: str, user_id: str):
    """(permissions, channel) for ``/channels/{id}/messages`` in a DM the user is joined
    to, or None when the room is not a DM of theirs (then it may be a server channel)."""
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        return None
    dm = await _load(hs, room_id, user_id)
    if dm is None or dm.membership(user_id) != "join":
        return None
    bits = DM_BITS
    if dm.kind == "dm":
        others = [u for u in dm.members() if u != user_id]
        if others and await rel.blocked_between(hs, user_id, others[0]):
            bits = _BLOCKED_BITS  # the history stays readable; nothing new reaches them
    channel = Channel(room_id, None, dm.state, "text", 0, None)
    return DmPermissions(room_id, bits), channel


# -- writing ------------------------------------------------------------------------

async def _add_member(hs, actor: str, dm: _Dm | str, target: str, others: list[str]) -> None:
    """Invite ``target`` (``is_direct``); a local user is joined at once and gets the
    room in ``m.direct`` under ``others``."""
    room_id = dm if isinstance(dm, str) else dm.room_id
    current = await hs.membership.current_membership(room_id, target)
    if current == "ban":
        raise forbidden("This user is banned from the DM")
    if rel.is_local(hs, target):
        if current != "join":
            if current != "invite":
                content = {"membership": "invite", "is_direct": True,
                           **await hs.profiles_handler.member_content(target)}
                await hs.event_sender.send(actor, room_id, "m.room.member", content, state_key=target)
            await hs.membership.join(target, room_id)
        await _record_direct(hs, target, others, room_id)
        return
    if current in ("join", "invite"):
        return
    if hs.membership.remote is None:
        raise forbidden("Users of other servers need federation, which is not enabled")
    await hs.membership.remote.invite(actor, room_id, target, {"membership": "invite", "is_direct": True})


async def _create(hs, creator: str, group: bool) -> str:
    from homeserver.drocsid.voice_rules import VOICE_STATE_EVENT
    from homeserver.drocsid.servers import _version
    from homeserver.handlers.room_creation import default_power_levels
    # Every member may say they joined the call (voice state is room state).
    events = {**default_power_levels(_version(hs), creator, [])["events"], VOICE_STATE_EVENT: 0}
    return await hs.room_creator.create_room(
        creator, preset="private_chat", is_direct=True, power_level_content_override={"events": events},
        initial_state=[{"type": DM_EVENT, "state_key": "", "content": {"group": group}},
                       {"type": "m.room.guest_access", "state_key": "", "content": {"guest_access": "forbidden"}}])


async def _existing(hs, user_id: str, recipient: str) -> str | None:
    """A 1:1 DM between the two to reuse (reopened if needed), or None."""
    for room_id in (await _direct(hs, user_id)).get(recipient, []):
        dm = await _load(hs, room_id, user_id)
        if dm is None or dm.kind != "dm" or dm.membership(recipient) == "ban":
            continue
        others = [u for u in dm.members() if u != user_id]
        if others and others != [recipient]:
            continue
        mine = dm.membership(user_id)
        if mine == "invite":
            await hs.membership.join(user_id, room_id)
        elif mine != "join":
            # We closed it: the other side, if local and still in, lets us back in.
            if not rel.is_local(hs, recipient) or dm.membership(recipient) != "join":
                continue
            await hs.event_sender.send(recipient, room_id, "m.room.member",
                                       {"membership": "invite", "is_direct": True,
                                        **await hs.profiles_handler.member_content(user_id)}, state_key=user_id)
            await hs.membership.join(user_id, room_id)
        if dm.membership(recipient) not in ("join", "invite"):
            await _add_member(hs, user_id, room_id, recipient, [user_id])
        return room_id
    # A DM they invited us to (from another server, or from a Matrix client).
    for room_id in await hs.rooms.get_rooms_for_user(user_id, "invite"):
        head = await hs.room_heads.get(room_id)
        member_id = head.state.get(("m.room.member", user_id)) if head is not None else None
        member = await hs.events.get_event(member_id) if member_id else None
        if member is not None and member.sender == recipient and member.content.get("is_direct") is True:
            await hs.membership.join(user_id, room_id)
            await _record_direct(hs, user_id, [recipient], room_id)
            return room_id
    return None


async def open_dm(hs, user_id: str, recipient: str) -> dict:
    """The 1:1 DM with ``recipient``: the existing one, or a new one."""
    await rel.check_user(hs, user_id, recipient, self_message="You cannot DM yourself")
    await rel.require_not_blocked(hs, user_id, recipient, "send a direct message to")
    async with rel.lock(hs).hold(("dm", *sorted((user_id, recipient)))):  # one DM even if both open at once
        room_id = await _existing(hs, user_id, recipient)
        if room_id is None:
            room_id = await _create(hs, user_id, group=False)
            await _record_direct(hs, user_id, [recipient], room_id)
            await _add_member(hs, user_id, room_id, recipient, [user_id])
    return await get_dm(hs, room_id, user_id)


async def open_group(hs, user_id: str, recipients: list[str]) -> dict:
    if len(set(recipients)) != len(recipients):
        raise invalid_param("'recipient_ids' must not repeat a user")
    for recipient in recipients:
        await rel.check_user(hs, user_id, recipient, self_message="You are in the group DM already")
    for recipient in recipients:
        await rel.require_not_blocked(hs, user_id, recipient, "add to a group DM")
    room_id = await _create(hs, user_id, group=True)
    await _record_direct(hs, user_id, recipients, room_id)
    for recipient in recipients:
        await _add_member(hs, user_id, room_id, recipient, [user_id])
    return await get_dm(hs, room_id, user_id)


async def add_recipient(hs, user_id: str, room_id: str, target: str) -> dict:
    dm = await joined_dm(hs, room_id, user_id)
    if dm.kind != "group_dm":
        raise invalid_param("Recipients can only be added to a group DM")
    await rel.check_user(hs, user_id, target, self_message="You are in the group DM already")
    async with rel.lock(hs).hold(("dm-room", room_id)):
        dm = await joined_dm(hs, room_id, user_id)
        if dm.membership(target) in ("join", "invite"):
            return await dm_object(hs, dm, user_id)
        await rel.require_not_blocked(hs, user_id, target, "add to a group DM")
        if len(dm.members()) >= MAX_GROUP_MEMBERS:
            raise invalid_param(f"A group DM holds at most {MAX_GROUP_MEMBERS} members")
        await _add_member(hs, user_id, dm, target, [user_id])
    return await get_dm(hs, room_id, user_id)


async def close(hs, user_id: str, room_id: str) -> None:
    """Leave the DM; history is kept and reopening the DM returns to it."""
    dm = await _load(hs, room_id, user_id) if isinstance(room_id, str) and room_id.startswith("!") else None
    if dm is None or dm.membership(user_id) not in ("join", "invite"):
        raise not_found("Unknown DM")
    await hs.membership.leave(user_id, room_id)
