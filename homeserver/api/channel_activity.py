"""Channel activity beyond plain messages (DESIGN.md §2 "attachment", "thread", "typing,
presence, read state"): file uploads, threads, typing and read states.

- ``POST /channels/{id}/attachments?filename=`` takes the file as the raw body (its
  Content-Type header is the file's type), as ``/_matrix/media/v3/upload`` does, and
  stores it in the same media repository (same size limit and rate limit). It needs
  VIEW_CHANNEL and ATTACH_FILES. The answer's ``id`` (an ``mxc://`` URI) is then named in
  ``attachments`` of ``POST /channels/{id}/messages``.
- Threads: ``homeserver.drocsid.threads``. Typing: ``m.typing`` for 10 seconds (VIEW_CHANNEL
  and SEND_MESSAGES). Read states: ``homeserver.drocsid.read_states``.

Typing and acknowledging work in server channels and in DMs (rooms of ``m.direct``).
"""

from __future__ import annotations

from homeserver.api.channels import channel_for
from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.uploads import request_bytes
from homeserver.drocsid import permissions as perms
from homeserver.drocsid import read_states
from homeserver.drocsid.messages import DEFAULT_LIMIT, MAX_LIMIT, Messages, download_url, require
from homeserver.drocsid.threads import MAX_NAME, Threads
from homeserver.http.errors import MatrixError, forbidden, invalid_param, missing_param, not_found
from homeserver.http.request import query_int, query_str
from homeserver.http.router import Response
from homeserver.media.repository import clean_content_type

TYPING_TIMEOUT_MS = 10_000

ATTACHMENT_SCHEMA = {
    "type": "object",
    "required": ["id", "filename", "content_type", "size", "url"],
    "properties": {
        "id": {"type": "string", "description": "The mxc:// URI to name in a message's 'attachments'"},
        "filename": {"type": "string"},
        "content_type": {"type": "string"},
        "size": {"type": "integer"},
        "url": {"type": "string", "description": "Authenticated media download path"},
    },
}

THREAD_SCHEMA = {
    "type": "object",
    "required": ["id", "channel_id", "name", "message_id", "owner_id", "message_count", "last_message_id",
                 "last_activity_at", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "The root message's event ID"},
        "channel_id": {"type": "string"},
        "name": {"type": "string"},
        "message_id": {"type": "string", "description": "The root message"},
        "owner_id": {"type": "string", "description": "Who started it"},
        "message_count": {"type": "integer", "description": "Replies in the thread"},
        "last_message_id": {"type": ["string", "null"]},
        "last_activity_at": {"type": "string", "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

READ_STATE_SCHEMA = {
    "type": "object",
    "required": ["channel_id", "last_read_message_id", "unread_count", "mention_count"],
    "properties": {
        "channel_id": {"type": "string"},
        "last_read_message_id": {"type": ["string", "null"], "description": "The m.read receipt's event"},
        "unread_count": {"type": "integer", "description": "/sync notification_count"},
        "mention_count": {"type": "integer", "description": "/sync highlight_count"},
    },
}

THREAD_BODY = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
        "message_id": {"type": ["string", "null"],
                       "description": "The root message; without it a message named after the thread is sent"},
    },
}

ACK_BODY = {
    "type": "object",
    "required": ["message_id"],
    "properties": {"message_id": {"type": "string", "description": "A message of the channel"}},
}


def _no_content() -> Response:
    return Response(204, b"", b"application/json")


def register(api: ApiRoutes, hs) -> None:
    message_list = {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}
    attachment_ref = api.schema("Attachment", ATTACHMENT_SCHEMA)
    thread_ref = api.schema("Thread", THREAD_SCHEMA)
    read_state_ref = api.schema("ReadState", READ_STATE_SCHEMA)

    async def messages(call: ApiCall) -> Messages:
        user_id = call.requester.user_id
        server, channel = await channel_for(hs, call.params["channel_id"], user_id)
        return Messages(hs, server, channel, user_id)

    async def activity_room(call: ApiCall) -> tuple[Messages | None, str]:
        """(the channel's Messages, room) for a server channel; (None, room) for a joined DM."""
        room_id = call.params["channel_id"]
        try:
            return await messages(call), room_id
        except MatrixError as error:
            if error.status != 404:
                raise
        if room_id in await read_states.dm_rooms(hs, call.requester.user_id):
            return None, room_id
        raise not_found("Unknown channel")

    # --- attachments ---------------------------------------------------------------------

    async def upload(call: ApiCall):
        handler = await messages(call)
        require(handler.bits, perms.P.VIEW_CHANNEL | perms.P.ATTACH_FILES, "ATTACH_FILES")
        filename = query_str(call.request, "filename")
        if filename is None:
            raise missing_param("filename")
        if not filename.strip() or len(filename) > 255:
            raise invalid_param("'filename' must be between 1 and 255 characters")
        data = request_bytes(call)
        if not data:
            raise invalid_param("The file is empty")
        raw_type = call.request.getHeader(b"Content-Type")
        content_type = clean_content_type(raw_type.decode("latin-1") if isinstance(raw_type, bytes) else raw_type)
        uri = await hs.media_repository.upload(call.requester.user_id, data, content_type, filename)
        media = await hs.media_repository.store.get_local_media(uri.rsplit("/", 1)[1])
        return 200, {"id": uri, "filename": media.upload_name or filename, "content_type": media.content_type,
                     "size": media.size_bytes, "url": download_url(uri)}

    # --- threads -------------------------------------------------------------------------

    async def create_thread(call: ApiCall):
        # Starting a thread sends messages: the same budget as POST /messages.
        if call.requester.rate_limited:  # application services with rate_limited: false are exempt
            hs.ratelimiter.check("message_send", call.requester.user_id, hs.config.limits.message_send_per_second,
                                 hs.config.limits.message_send_burst)
        return 200, await Threads(await messages(call)).create(call.body["name"], call.body.get("message_id"))

    async def list_threads(call: ApiCall):
        return 200, await Threads(await messages(call)).list()

    async def get_thread(call: ApiCall):
        return 200, await Threads(await messages(call)).get(call.params["thread_id"])

    async def thread_messages(call: ApiCall):
        limit = min(query_int(call.request, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        before = query_str(call.request, "before")
        return 200, await Threads(await messages(call)).thread_messages(call.params["thread_id"], limit, before)

    # --- typing and read states ---------------------------------------------------------------

    async def typing(call: ApiCall):
        handler, room_id = await activity_room(call)
        if handler is not None:
            require(handler.bits, perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES, "SEND_MESSAGES")
        if await hs.membership.current_membership(room_id, call.requester.user_id) != "join":
            raise forbidden("Join the channel first")
        hs.typing.set_typing(room_id, call.requester.user_id, True, TYPING_TIMEOUT_MS)
        return _no_content()

    async def ack(call: ApiCall):
        _, room_id = await activity_room(call)
        event = await read_states.visible_message(hs, call.requester.user_id, room_id, call.body["message_id"])
        await read_states.ack(hs, call.requester.user_id, room_id, event)
        return _no_content()

    async def my_read_states(call: ApiCall):
        return 200, await read_states.read_states(hs, call.requester.user_id)

    base = "/channels/{channel_id}"
    api.add("POST", base + "/attachments", upload, tag="messages", summary="Upload a file to attach",
            response=attachment_ref, rate_limited=True,
            description="Needs VIEW_CHANNEL and ATTACH_FILES. The body is the file itself (its Content-Type "
                        "header its type); query: filename (required). Stored in the media repository (its "
                        "size limit applies: 413 M_TOO_LARGE beyond). Name the answer's id in 'attachments' "
                        "of POST /channels/{channel_id}/messages.")
    api.add("POST", base + "/threads", create_thread, tag="messages", summary="Start a thread on a message",
            request=THREAD_BODY, response=thread_ref, rate_limited=True,
            description="Needs VIEW_CHANNEL and SEND_MESSAGES. An m.thread rooted at message_id, named by its "
                        "first event (io.drocsid.thread_name). Post into it with thread_id on "
                        "POST /channels/{channel_id}/messages.")
    api.add("GET", base + "/threads", list_threads, tag="messages", summary="The channel's threads",
            response={"type": "array", "items": thread_ref},
            description="Needs VIEW_CHANNEL and READ_MESSAGE_HISTORY. Most recently active first.")
    api.add("GET", base + "/threads/{thread_id}", get_thread, tag="messages", summary="One thread",
            response=thread_ref)
    api.add("GET", base + "/threads/{thread_id}/messages", thread_messages, tag="messages",
            summary="A page of a thread's messages, newest first", response=message_list,
            description=f"Needs VIEW_CHANNEL and READ_MESSAGE_HISTORY. Query: limit (default {DEFAULT_LIMIT}, "
                        f"max {MAX_LIMIT}), before (a message of the thread). The root is not included.")
    api.add("POST", base + "/typing", typing, tag="messages", summary="Show that you are typing", status=204,
            description=f"Needs VIEW_CHANNEL and SEND_MESSAGES. m.typing for {TYPING_TIMEOUT_MS // 1000} s.")
    api.add("PUT", base + "/ack", ack, tag="messages", summary="Mark the channel read up to a message",
            request=ACK_BODY, status=204,
            description="Sets the m.read receipt and m.fully_read marker (never backwards).")
    api.add("GET", "/users/@me/read-states", my_read_states, tag="users",
            summary="Read state of every channel and DM you are in", response={"type": "array",
                                                                              "items": read_state_ref})
