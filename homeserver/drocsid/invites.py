"""Invite codes of Drocsid servers (DESIGN.md §2 "invite code"): making them, showing
what they lead to, and redeeming them.

A code names a server (a space) of this homeserver. Redeeming it takes one use with a
single conditional UPDATE (``InviteCodeStore.take_use``), then the homeserver invites
the user into the space on behalf of the code's creator (the owner when the creator can
no longer invite) and the user joins the space and the channels they may view. If the
invite or the join fails, the invite is withdrawn and the use given back. Banned users
are refused before a use is taken. No use is counted for a member redeeming again (they
get the server) nor for a user already invited into the space (they only need to join).

Users of other instances redeem through their own homeserver, which asks this one over
federation (``federation.invite_codes``): here, ``admit_remote_user`` takes the use and
sends the Matrix invite over federation; their homeserver then joins them. A join that
fails over there keeps the use: the invite it paid for stands, and redeeming again
only joins.
"""

from __future__ import annotations

import secrets

from twisted.logger import Logger

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.relationships import is_local
from homeserver.drocsid.server_state import Server, load_server
from homeserver.drocsid.servers import join_channels
from homeserver.http.errors import MatrixError, forbidden, not_found
from storage.stores.invite_codes import InviteCode

log = Logger(namespace="drocsid.invites")

# No 0/O, 1/I/l: a code read aloud or copied by hand comes out right.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
CODE_LENGTH = 12
MAX_AGE_SECS = 10 * 365 * 24 * 3600
MAX_USES = 1_000_000


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def looks_like_code(code: str) -> bool:
    return 0 < len(code) <= 64 and all(c in ALPHABET for c in code)


def invite_json(invite: InviteCode) -> dict:
    from homeserver.api.users import iso_timestamp

    return {"code": invite.code, "server_id": invite.server_id, "creator_id": invite.creator_id,
            "max_uses": invite.max_uses, "uses": invite.uses,
            "expires_at": iso_timestamp(invite.expires_at) if invite.expires_at is not None else None,
            "created_at": iso_timestamp(invite.created_at)}


def preview_json(invite: InviteCode, server: Server) -> dict:
    from homeserver.api.users import iso_timestamp

    summary = server.to_json()
    return {"code": invite.code,
            "server": {"id": server.room_id, "name": summary["name"], "icon_url": summary["icon_url"],
                       "description": summary["description"], "member_count": len(server.members)},
            "expires_at": iso_timestamp(invite.expires_at) if invite.expires_at is not None else None}


async def create_invite(hs, server: Server, creator_id: str, max_uses: int | None,
                        max_age_secs: int | None) -> InviteCode:
    """A new code for the server (the caller checked CREATE_INSTANT_INVITE)."""
    now = hs.clock.time_ms()
    expires_at = now + max_age_secs * 1000 if max_age_secs is not None and max_age_secs > 0 else None
    for _attempt in range(5):
        invite = InviteCode(new_code(), server.room_id, creator_id, max_uses or 0, 0, expires_at, now)
        if await hs.invite_codes.create(invite):
            return invite
    raise MatrixError(500, "M_UNKNOWN", "Could not choose a free invite code")


async def usable_invite(hs, code: str) -> tuple[InviteCode, Server]:
    """The code and its server, or 404 when the code is unknown, expired, used up, or
    its server is gone."""
    invite = await hs.invite_codes.get(code) if looks_like_code(code) else None
    if invite is None or not invite.usable(hs.clock.time_ms()):
        raise not_found("Unknown, expired or used up invite code")
    server = await load_server(hs, invite.server_id)
    if server is None:
        raise not_found("Unknown, expired or used up invite code")
    return invite, server


def _inviter(hs, server: Server, creator_id: str) -> str:
    """Who sends the Matrix invite: the creator while they may still invite, else the owner."""
    if (is_local(hs, creator_id) and server.is_member(creator_id)
            and perms.has_permissions(server.permissions(creator_id), perms.P.CREATE_INSTANT_INVITE)):
        return creator_id
    return server.owner_id


async def _invite(hs, server: Server, creator_id: str, user_id: str) -> None:
    inviter = _inviter(hs, server, creator_id)
    try:
        await hs.membership.invite(inviter, server.room_id, user_id)
    except MatrixError as error:
        # The creator's Matrix power may lag their Drocsid permission: the owner can always invite.
        if error.status != 403 or inviter == server.owner_id:
            raise
        await hs.membership.invite(server.owner_id, server.room_id, user_id)


def _refuse_banned(server: Server, user_id: str) -> None:
    if server.state.memberships.get(user_id) == "ban":
        raise forbidden("You are banned from this server")


async def _withdraw_invite(hs, server: Server, user_id: str) -> None:
    """Take back the invite of a redemption that failed, so that it leaves nothing behind."""
    try:
        if await hs.membership.current_membership(server.room_id, user_id) == "invite":
            await hs.membership.kick(server.owner_id, server.room_id, user_id, "the invite code's join failed")
    except MatrixError as error:
        log.warn("could not withdraw the invite of {user_id} to {server_id}: {error}", user_id=user_id,
                 server_id=server.room_id, error=error)


def _invited(server: Server, user_id: str) -> bool:
    # Invited already (by a redemption whose join failed, or by hand): joining needs no new use.
    return server.state.memberships.get(user_id) == "invite"


async def _with_use(hs, invite: InviteCode, admit) -> None:
    """Take one use of the code, run ``admit``; give the use back if ``admit`` fails."""
    if await hs.invite_codes.take_use(invite.code, hs.clock.time_ms()) is None:
        raise not_found("Unknown, expired or used up invite code")
    try:
        await admit()
    except BaseException:
        await hs.invite_codes.give_back_use(invite.code)
        raise


async def admit_local(hs, code: str, user_id: str) -> Server:
    """Redeem a code of this homeserver for one of its users: the server they are in."""
    invite, server = await usable_invite(hs, code)
    _refuse_banned(server, user_id)
    if server.is_member(user_id):
        # Already in: no use counted; make sure they are in the channels they may view.
        await join_channels(hs, user_id, server)
        return await load_server(hs, server.room_id) or server

    async def admit() -> None:
        await _invite(hs, server, invite.creator_id, user_id)
        try:
            await hs.membership.join(user_id, server.room_id)
        except BaseException:
            await _withdraw_invite(hs, server, user_id)
            raise

    if _invited(server, user_id):
        await hs.membership.join(user_id, server.room_id)
    else:
        await _with_use(hs, invite, admit)
    joined = await load_server(hs, server.room_id) or server
    try:
        await join_channels(hs, user_id, joined)
    except MatrixError as error:
        # The user is in the server; a channel they could not enter does not undo that.
        log.warn("joining {user_id} to the channels of {server_id} failed: {error}", user_id=user_id,
                 server_id=server.room_id, error=error)
    return await load_server(hs, server.room_id) or joined


async def admit_remote_user(hs, code: str, user_id: str) -> dict:
    """Redeem a code of this homeserver for a user of another instance: invite them
    into the space (over federation) and into the private channels they may view, and
    name the channels their homeserver should join them to."""
    invite, server = await usable_invite(hs, code)
    _refuse_banned(server, user_id)
    already = server.is_member(user_id)
    if not already and not _invited(server, user_id):
        await _with_use(hs, invite, lambda: _invite(hs, server, invite.creator_id, user_id))
    channels = []
    for channel in server.visible_channels(user_id):
        if channel.kind == "category" or channel.state.memberships.get(user_id) == "ban":
            continue
        if channel.private and channel.state.memberships.get(user_id) not in ("invite", "join"):
            try:
                await hs.membership.invite(server.owner_id, channel.room_id, user_id)
            except MatrixError as error:
                log.warn("inviting {user_id} to private channel {room_id} failed: {error}", user_id=user_id,
                         room_id=channel.room_id, error=error)
                continue
        channels.append(channel.room_id)
    return {"room_id": server.room_id, "channels": channels, "already_member": already}


async def admit(hs, code: str, user_id: str, server_name: str | None) -> Server:
    """Redeem a code for a user of this homeserver: a code of this homeserver, or, with
    ``server_name`` naming another instance, one of that instance's codes."""
    if server_name is None or server_name == hs.config.server_name:
        return await admit_local(hs, code, user_id)
    remote = getattr(hs, "remote_invite_codes", None)
    if remote is None:
        raise forbidden("Invite codes of other servers need federation, which is not enabled")
    if not looks_like_code(code):
        raise not_found("Unknown, expired or used up invite code")
    return await remote.redeem(server_name, code, user_id)


async def preview(hs, code: str, server_name: str | None) -> dict:
    if server_name is None or server_name == hs.config.server_name:
        invite, server = await usable_invite(hs, code)
        return preview_json(invite, server)
    remote = getattr(hs, "remote_invite_codes", None)
    if remote is None or not looks_like_code(code):
        raise not_found("Unknown, expired or used up invite code")
    return await remote.preview(server_name, code)
