"""``/channels/{id}/messages``, reactions and pins: Matrix events of the channel's room
(DESIGN.md §2; the mapping and the rules are in ``homeserver.drocsid.messages``).

Permissions are the user's in the channel: reading needs VIEW_CHANNEL and
READ_MESSAGE_HISTORY, sending VIEW_CHANNEL and SEND_MESSAGES, reacting ADD_REACTIONS,
pinning MANAGE_MESSAGES. Editing is the author's alone; deleting the author's or
MANAGE_MESSAGES. ``@everyone``/``@here`` without MENTION_EVERYONE is sent but pings nobody.
Files (``attachments``, uploaded through ``POST /channels/{id}/attachments``) also need
ATTACH_FILES; ``thread_id`` posts into a thread (``homeserver.api.channel_activity``).
"""

from __future__ import annotations

from homeserver.api.channels import channel_for
from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.dms import dm_channel
from homeserver.drocsid.messages import DEFAULT_LIMIT, MAX_ATTACHMENTS, MAX_CONTENT, MAX_LIMIT, Messages, require
from homeserver.http.errors import MatrixError
from homeserver.http.request import query_int, query_str

MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["id", "channel_id", "author", "content", "html", "created_at", "edited_at", "reply_to",
                 "mentions", "mention_everyone", "mention_roles", "reactions", "pinned", "attachments", "thread_id"],
    "properties": {
        "id": {"type": "string", "description": "The Matrix event ID", "examples": ["$abc"]},
        "channel_id": {"type": "string", "description": "The channel's room ID"},
        "author": {"type": "object", "properties": {"id": {"type": "string"},
                                                    "display_name": {"type": ["string", "null"]}}},
        "content": {"type": "string", "description": "The Markdown source (body), the latest edit applied"},
        "html": {"type": ["string", "null"], "description": "The sanitized HTML rendering of the content"},
        "created_at": {"type": "string", "format": "date-time"},
        "edited_at": {"type": ["string", "null"], "format": "date-time"},
        "reply_to": {"type": ["string", "null"], "description": "The message replied to (m.in_reply_to)"},
        "mentions": {"type": "array", "items": {"type": "string"}, "description": "m.mentions.user_ids"},
        "mention_everyone": {"type": "boolean", "description": "m.mentions.room"},
        "mention_roles": {"type": "array", "items": {"type": "string"},
                          "description": "Roles pinged with <@&role_id> (mentionable ones, or any with "
                                         "MENTION_EVERYONE); their members are in mentions"},
        "reactions": {"type": "array", "items": {
            "type": "object", "properties": {"key": {"type": "string"}, "count": {"type": "integer"},
                                             "me": {"type": "boolean"}}}},
        "pinned": {"type": "boolean", "description": "Listed in m.room.pinned_events"},
        "attachments": {"type": "array", "description": "The file of a media message (at most one)", "items": {
            "type": "object", "required": ["id", "filename", "content_type", "size", "url"],
            "properties": {"id": {"type": "string", "description": "The mxc:// URI"},
                           "filename": {"type": "string"}, "content_type": {"type": "string"},
                           "size": {"type": ["integer", "null"]},
                           "url": {"type": "string", "description": "Authenticated media download path"},
                           "width": {"type": "integer"}, "height": {"type": "integer"}}}},
        "thread_id": {"type": ["string", "null"], "description": "The thread's root message (m.thread)"},
    },
}

SEND_BODY = {
    "type": "object",
    "properties": {
        "content": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT, "description": "Markdown"},
        "reply_to": {"type": ["string", "null"], "description": "A message of this channel"},
        "reply_to_id": {"type": ["string", "null"], "description": "The original's name for 'reply_to'"},
        "nonce": {"type": ["string", "null"], "maxLength": 64,
                  "description": "Retries with the same nonce (same device) give the first message"},
        "attachments": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ATTACHMENTS,
                        "description": "mxc:// URIs of your uploads; each becomes a message of its own, the "
                                       "content the first one's caption. Needs ATTACH_FILES"},
        "thread_id": {"type": ["string", "null"], "description": "Post into the thread rooted at this message"},
    },
}

EDIT_BODY = {
    "type": "object",
    "required": ["content"],
    "properties": {"content": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT}},
}


def register(api: ApiRoutes, hs) -> None:
    message_ref = api.schema("Message", MESSAGE_SCHEMA)
    messages_ref = {"type": "array", "items": message_ref}
    empty = {"type": "object"}

    async def messages(call: ApiCall) -> Messages:
        user_id = call.requester.user_id
        try:
            server, channel = await channel_for(hs, call.params["channel_id"], user_id)
        except MatrixError:
            # Not a channel of a server the user sees: perhaps a DM (a channel of no server).
            dm = await dm_channel(hs, call.params["channel_id"], user_id)
            if dm is None:
                raise
            server, channel = dm
        return Messages(hs, server, channel, user_id)

    async def list_messages(call: ApiCall):
        limit = min(query_int(call.request, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        before = query_str(call.request, "before")
        return 200, await (await messages(call)).list(limit, before)

    async def send(call: ApiCall):
        if call.requester.rate_limited:  # application services with rate_limited: false are exempt
            hs.ratelimiter.check("message_send", call.requester.user_id, hs.config.limits.message_send_per_second,
                                 hs.config.limits.message_send_burst)
        body = call.body
        reply_to = body.get("reply_to") or body.get("reply_to_id")
        return 200, await (await messages(call)).send(body.get("content"), reply_to, body.get("nonce"),
                                                      call.requester.device_id, body.get("attachments"),
                                                      body.get("thread_id"))

    async def get(call: ApiCall):
        handler = await messages(call)
        require(handler.bits, perms.P.READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        return 200, await handler.message(call.params["message_id"])

    async def edit(call: ApiCall):
        return 200, await (await messages(call)).edit(call.params["message_id"], call.body["content"])

    async def delete(call: ApiCall):
        await (await messages(call)).delete(call.params["message_id"])
        return 200, {}

    async def react(call: ApiCall):
        await (await messages(call)).react(call.params["message_id"], call.params["emoji"])
        return 200, {}

    async def unreact(call: ApiCall):
        await (await messages(call)).unreact(call.params["message_id"], call.params["emoji"])
        return 200, {}

    async def pins(call: ApiCall):
        return 200, await (await messages(call)).pins()

    async def pin(call: ApiCall):
        await (await messages(call)).pin(call.params["message_id"])
        return 200, {}

    async def unpin(call: ApiCall):
        await (await messages(call)).unpin(call.params["message_id"])
        return 200, {}

    base = "/channels/{channel_id}"
    one = base + "/messages/{message_id}"
    api.add("GET", base + "/messages", list_messages, tag="messages", summary="A page of messages, newest first",
            response=messages_ref,
            description=f"Needs VIEW_CHANNEL and READ_MESSAGE_HISTORY. Query: limit (default {DEFAULT_LIMIT}, "
                        f"max {MAX_LIMIT}), before (a message ID). Edits applied; deleted messages left out.")
    api.add("POST", base + "/messages", send, tag="messages", summary="Send a message", request=SEND_BODY,
            response=message_ref,
            description="Needs VIEW_CHANNEL and SEND_MESSAGES. Markdown is rendered to sanitized HTML; "
                        "@user:server mentions go to m.mentions.user_ids; @everyone/@here ping only with "
                        "MENTION_EVERYONE (without it the message is sent, pinging nobody). 'content' "
                        "may be left out when 'attachments' are given.")
    api.add("GET", one, get, tag="messages", summary="One message", response=message_ref)
    api.add("PATCH", one, edit, tag="messages", summary="Edit one's own message (m.replace)", request=EDIT_BODY,
            response=message_ref, description="The author only.")
    api.add("DELETE", one, delete, tag="messages", summary="Delete a message (a redaction)", response=empty,
            description="The author, or MANAGE_MESSAGES.")
    api.add("PUT", one + "/reactions/{emoji}", react, tag="messages", summary="React (m.reaction annotation)",
            response=empty, description="Needs ADD_REACTIONS. Reacting twice with the same key is one reaction.")
    api.add("DELETE", one + "/reactions/{emoji}", unreact, tag="messages", summary="Remove one's own reaction",
            response=empty)
    api.add("GET", base + "/pins", pins, tag="messages", summary="Pinned messages (m.room.pinned_events)",
            response=messages_ref, description="Needs VIEW_CHANNEL and READ_MESSAGE_HISTORY.")
    api.add("PUT", base + "/pins/{message_id}", pin, tag="messages", summary="Pin a message", response=empty,
            description="Needs MANAGE_MESSAGES.")
    api.add("DELETE", base + "/pins/{message_id}", unpin, tag="messages", summary="Unpin a message",
            response=empty, description="Needs MANAGE_MESSAGES.")
