"""Webhooks (DESIGN.md §2): a virtual user per webhook that posts into one channel.

- The webhook ``<id>`` posts as ``@_webhook_<id>:<our server>``, a user in a namespace
  nobody may register (``homeserver.identifiers``), created with the webhook, without a
  password: only the homeserver acts as it.
- It is made a member of the server's space (invited by the owner) and joined to the
  channel. Where @everyone may not view or send in the channel, the owner gives it a
  member overwrite allowing VIEW_CHANNEL and SEND_MESSAGES (and the power levels follow),
  so a webhook works in private and read-only channels as in Discord.
- Each message carries ``io.drocsid.webhook`` ``{id, username, avatar_url}``: the
  name and avatar shown for that message. Only the webhook's own user may carry it
  (``webhook_author`` checks the sender), so nobody else can pose as a webhook.
- The token (68 URL-safe characters) is shown once, at creation; only its SHA-256 is
  stored, and a presented token is compared by hash in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.server_state import Channel, Server, load_room_state, load_server

NAMESPACE = "_webhook_"
CONTENT_KEY = "io.drocsid.webhook"
MAX_NAME = 80
MAX_AVATAR_URL = 1024
_ID = re.compile(r"[0-9a-f]{24}\Z")
_ACCESS = int(perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES)


def new_webhook_id() -> str:
    return secrets.token_hex(12)


def new_token() -> str:
    return secrets.token_urlsafe(51)  # 68 characters of [A-Za-z0-9_-]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token_hash: str, presented: str) -> bool:
    return hmac.compare_digest(token_hash, hash_token(presented))


def is_webhook_id(value: str) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def webhook_user_id(webhook_id: str, server_name: str) -> str:
    return f"@{NAMESPACE}{webhook_id}:{server_name}"


def webhook_id_of(user_id: str) -> str | None:
    """The webhook a (virtual) user ID belongs to, on whichever server; None for people."""
    local = user_id[1:].split(":", 1)[0] if user_id.startswith("@") else ""
    if not local.startswith(NAMESPACE):
        return None
    webhook_id = local[len(NAMESPACE):]
    return webhook_id if is_webhook_id(webhook_id) else None


def webhook_author(event) -> dict | None:
    """The author shown for a webhook's message (its per-message name and avatar), or
    None when the event is not a webhook's (the override is honoured from its user only)."""
    webhook_id = webhook_id_of(event.sender)
    override = event.content.get(CONTENT_KEY)
    if webhook_id is None or not isinstance(override, dict) or override.get("id") != webhook_id:
        return None
    username = override.get("username")
    avatar = override.get("avatar_url")
    return {"id": event.sender, "display_name": username[:MAX_NAME] if isinstance(username, str) else None,
            "avatar_url": avatar if isinstance(avatar, str) else None, "webhook_id": webhook_id, "bot": True}


# -- Matrix side ----------------------------------------------------------------------

async def _grant_access(hs, server: Server, channel: Channel, user_id: str) -> None:
    """Give the webhook's user VIEW_CHANNEL and SEND_MESSAGES in the channel, and the
    power level that goes with it, when @everyone's bits there do not."""
    owner = server.owner_id
    category = server.channel(channel.parent_id) if channel.parent_id else None
    if category is not None and not channel.overwrites:
        # A channel in step with its category: keep its category's overwrites (a private
        # category stays private) before it gets one of its own.
        for state_key, content in category.state.of_type(perms.OVERWRITE_EVENT).items():
            await hs.event_sender.send(owner, channel.room_id, perms.OVERWRITE_EVENT, content, state_key=state_key)
    key = perms.member_state_key(user_id)
    current = channel.overwrites.get(user_id)
    allow = (current.allow if current else 0) | _ACCESS
    deny = (current.deny if current else 0) & ~_ACCESS
    content = {"type": "member", "allow": str(allow), "deny": str(deny)}
    await hs.event_sender.send(owner, channel.room_id, perms.OVERWRITE_EVENT, content, state_key=key)

    head = await hs.room_heads.get(channel.room_id)
    state = await load_room_state(hs, channel.room_id, {"m.room.create", perms.OVERWRITE_EVENT,
                                                             "m.room.power_levels"})
    overwrites = perms.overwrites_from_state(state.of_type(perms.OVERWRITE_EVENT))
    member_roles = server.member_roles
    people = set(member_roles) | {u for u, m in state.memberships.items() if m == "join"} | {owner, user_id}
    members = {u: member_roles.get(u, ()) for u in people}
    existing = state.content("m.room.power_levels")
    mirror = perms.power_levels_mirror(owner, server.roles, members, existing, overwrites=overwrites)
    if head.version.infinite_creator_power:
        creator = state.create.sender if state.create is not None else None
        mirror["users"] = {u: v for u, v in mirror["users"].items() if u != creator}
    if mirror != existing:
        await hs.event_sender.send(owner, channel.room_id, "m.room.power_levels", mirror, state_key="")


async def ensure_joined(hs, server: Server, channel: Channel, user_id: str) -> tuple[Server, Channel]:
    """Make the webhook's user a member of the server and of the channel, able to post."""
    owner = server.owner_id
    changed = False
    if not server.is_member(user_id):
        await hs.membership.invite(owner, server.room_id, user_id)
        await hs.membership.join(user_id, server.room_id)
        changed = True
    if (server.channel_permissions(user_id, channel) & _ACCESS) != _ACCESS:
        await _grant_access(hs, server, channel, user_id)
        changed = True
    if channel.state.memberships.get(user_id) != "join":
        if channel.state.join_rule != "restricted":
            await hs.membership.invite(owner, channel.room_id, user_id)
        await hs.membership.join(user_id, channel.room_id)
        changed = True
    if changed:
        server = await load_server(hs, server.room_id)
        channel = server.channel(channel.room_id)
    return server, channel


async def post(hs, server: Server, channel: Channel, user_id: str, webhook_id: str, source: str,
               username: str, avatar_url: str | None) -> str:
    """Post a message as the webhook; returns its event ID."""
    from homeserver.drocsid.messages import _text_content  # messages imports this module

    server, channel = await ensure_joined(hs, server, channel, user_id)
    bits = server.channel_permissions(user_id, channel)
    content = _text_content(source, perms.has_permissions(bits, perms.P.MENTION_EVERYONE))
    content[CONTENT_KEY] = {"id": webhook_id, "username": username, "avatar_url": avatar_url}
    event = await hs.event_sender.send(user_id, channel.room_id, "m.room.message", content)
    return event.event_id


async def retire(hs, server: Server | None, channel: Channel | None, user_id: str) -> None:
    """A deleted webhook's user leaves the channel and the server (best effort)."""
    for room_id in (channel.room_id if channel else None, server.room_id if server else None):
        if room_id and await hs.membership.current_membership(room_id, user_id) in ("join", "invite"):
            await hs.membership.leave(user_id, room_id)
