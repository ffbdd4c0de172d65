"""Webhooks: ``/channels/{id}/webhooks``, ``/servers/{id}/webhooks``, ``/webhooks/{id}``
and the unauthenticated ``POST /webhooks/{id}/{token}`` (the way they map onto Matrix is
in ``homeserver.drocsid.webhooks``).

Managing needs MANAGE_WEBHOOKS in the webhook's channel (listing a server's webhooks:
in the server). Unlike the original, the token is shown once, at creation, and stored
only as a hash; a wrong token and an unknown webhook get the same 404, so the answer
says nothing about which webhooks exist. Executions are rate limited per webhook.
"""

from __future__ import annotations

from appservice.loading import WEBHOOKS_SERVICE_ID
from homeserver.api.channels import channel_for
from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server, require
from homeserver.api.users import iso_timestamp
from homeserver.drocsid import permissions as perms
from homeserver.drocsid import webhooks as hooks
from homeserver.drocsid.messages import MAX_CONTENT, check_content
from homeserver.drocsid.server_state import load_server, server_of_channel
from homeserver.http.errors import MatrixError, invalid_param, not_found
from homeserver.http.router import Response
from storage.stores.webhooks import WebhookRecord

WEBHOOK_SCHEMA = {
    "type": "object",
    "required": ["id", "server_id", "channel_id", "creator_id", "user_id", "name", "avatar_url", "token",
                 "created_at"],
    "properties": {
        "id": {"type": "string", "description": "24 hex digits"},
        "server_id": {"type": "string"},
        "channel_id": {"type": "string"},
        "creator_id": {"type": "string"},
        "user_id": {"type": "string", "description": "The virtual user it posts as (@_webhook_<id>:server)"},
        "name": {"type": "string"},
        "avatar_url": {"type": ["string", "null"]},
        "token": {"type": ["string", "null"], "description": "Only in the answer to its creation; null after"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

_AVATAR = {"type": ["string", "null"], "maxLength": hooks.MAX_AVATAR_URL,
           "description": "An mxc://, https:// or http:// URL"}

CREATE_BODY = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": hooks.MAX_NAME}, "avatar_url": _AVATAR},
}

PATCH_BODY = {
    "type": "object",
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": hooks.MAX_NAME}, "avatar_url": _AVATAR},
}

EXECUTE_BODY = {
    "type": "object",
    "required": ["content"],
    "properties": {
        "content": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT, "description": "Markdown"},
        "username": {"type": ["string", "null"], "minLength": 1, "maxLength": hooks.MAX_NAME,
                     "description": "The name shown for this message; default the webhook's"},
        "avatar_url": _AVATAR,
    },
}


def _check_avatar(body: dict) -> None:
    avatar = body.get("avatar_url")
    if avatar is not None and not avatar.startswith(("mxc://", "https://", "http://")):
        raise invalid_param("'avatar_url' must be an mxc://, https:// or http:// URL")


def _check_name(name) -> None:
    if name is not None and not name.strip():
        raise invalid_param("'name' must not be blank")


def webhook_json(record: WebhookRecord, token: str | None = None) -> dict:
    return {"id": record.id, "server_id": record.server_id, "channel_id": record.channel_id,
            "creator_id": record.creator_id, "user_id": record.user_id, "name": record.name,
            "avatar_url": record.avatar_url, "token": token, "created_at": iso_timestamp(record.created_at)}


def register(api: ApiRoutes, hs) -> None:
    webhook_ref = api.schema("Webhook", WEBHOOK_SCHEMA)
    webhooks_ref = {"type": "array", "items": webhook_ref}
    store = hs.webhooks_store
    limits = hs.config.limits

    async def managed_channel(channel_id: str, user_id: str):
        server, channel = await channel_for(hs, channel_id, user_id)
        require(server.channel_permissions(user_id, channel), perms.P.MANAGE_WEBHOOKS, "MANAGE_WEBHOOKS")
        return server, channel

    async def live_webhook(webhook_id: str):
        """(record, server, channel) of a webhook whose channel is still in its server, or
        None. A webhook whose channel is gone goes with it (as in Discord)."""
        record = await store.get(webhook_id) if hooks.is_webhook_id(webhook_id) else None
        if record is None:
            return None
        found = await server_of_channel(hs, record.channel_id)
        if found is None or found[0].room_id != record.server_id:
            await store.delete(record.id)
            try:
                await hooks.retire(hs, await load_server(hs, record.server_id), None, record.user_id)
            except MatrixError:
                pass  # a deleted server has nobody left to leave
            return None
        return record, found[0], found[1]

    async def managed_webhook(call: ApiCall):
        """(record, server, channel) for a manager of the webhook; 404 if they cannot see it."""
        live = await live_webhook(call.params["webhook_id"])
        if live is None:
            raise not_found("Unknown webhook")
        record = live[0]
        try:
            server, channel = await managed_channel(record.channel_id, call.requester.user_id)
        except MatrixError as error:
            if error.status == 404:
                raise not_found("Unknown webhook") from None
            raise
        return record, server, channel

    async def create(call: ApiCall):
        user_id = call.requester.user_id
        body = call.body
        _check_name(body["name"])
        _check_avatar(body)
        server, channel = await managed_channel(call.params["channel_id"], user_id)
        if channel.kind != "text":
            raise invalid_param("Webhooks post into text channels")
        token = hooks.new_token()
        for _ in range(3):
            webhook_id = hooks.new_webhook_id()
            record = WebhookRecord(webhook_id, server.room_id, channel.room_id, user_id,
                                   hooks.webhook_user_id(webhook_id, hs.config.server_name), body["name"],
                                   body.get("avatar_url"), hooks.hash_token(token), hs.clock.time_ms())
            if await store.create(record, WEBHOOKS_SERVICE_ID):
                break
        else:
            raise MatrixError(500, "M_UNKNOWN", "Could not allocate a webhook ID")
        try:
            await hs.profiles_handler.set_field(record.user_id, "displayname", record.name)
            await hooks.ensure_joined(hs, server, channel, record.user_id)
        except Exception:
            await store.delete(record.id)  # a webhook that cannot post is not made
            raise
        return 200, webhook_json(record, token)

    async def list_channel(call: ApiCall):
        _server, channel = await managed_channel(call.params["channel_id"], call.requester.user_id)
        return 200, [webhook_json(r) for r in await store.list_for_channel(channel.room_id)]

    async def list_server(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        require(server.permissions(user_id), perms.P.MANAGE_WEBHOOKS, "MANAGE_WEBHOOKS")
        visible = {c.room_id for c in server.visible_channels(user_id)}
        return 200, [webhook_json(r) for r in await store.list_for_server(server.room_id) if r.channel_id in visible]

    async def get(call: ApiCall):
        record, _server, _channel = await managed_webhook(call)
        return 200, webhook_json(record)

    async def patch(call: ApiCall):
        record, _server, _channel = await managed_webhook(call)
        body = call.body
        _check_name(body.get("name"))
        _check_avatar(body)
        name = body.get("name", record.name)
        avatar = body.get("avatar_url") if "avatar_url" in body else record.avatar_url
        await store.update(record.id, name, avatar)
        if name != record.name:
            await hs.profiles_handler.set_field(record.user_id, "displayname", name)
        return 200, webhook_json(await store.get(record.id))

    async def delete(call: ApiCall):
        record, server, channel = await managed_webhook(call)
        await store.delete(record.id)
        try:
            await hooks.retire(hs, server, channel, record.user_id)
        except MatrixError:
            pass  # the token no longer works either way
        return 200, {}

    async def execute(call: ApiCall):
        webhook_id = call.params["webhook_id"]
        record = await store.get(webhook_id) if hooks.is_webhook_id(webhook_id) else None
        if record is None or not hooks.token_matches(record.token_hash, call.params["token"]):
            raise not_found("Unknown webhook")
        # After the token: nobody without it can use up a webhook's allowance.
        hs.ratelimiter.check("webhook_execute", record.id, limits.webhook_per_second, limits.webhook_burst)
        body = call.body
        source = check_content(body["content"])
        _check_avatar(body)
        username = body.get("username")
        if username is not None and not username.strip():
            raise invalid_param("'username' must not be blank")
        live = await live_webhook(record.id)
        if live is None:
            raise not_found("Unknown webhook")
        _record, server, channel = live
        await hooks.post(hs, server, channel, record.user_id, record.id, source, username or record.name,
                         body.get("avatar_url") or record.avatar_url)
        return Response(204, b"", b"application/json")

    base = "/channels/{channel_id}/webhooks"
    one = "/webhooks/{webhook_id}"
    manage = "Needs MANAGE_WEBHOOKS in the webhook's channel."
    api.add("POST", base, create, tag="webhooks", summary="Create a webhook", request=CREATE_BODY,
            response=webhook_ref,
            description="Needs MANAGE_WEBHOOKS in the channel (a text channel). The answer holds the token, "
                        "shown this once: only its SHA-256 is kept.")
    api.add("GET", base, list_channel, tag="webhooks", summary="The channel's webhooks (tokens not shown)",
            response=webhooks_ref, description=manage)
    api.add("GET", "/servers/{server_id}/webhooks", list_server, tag="webhooks",
            summary="The server's webhooks in channels one may view (tokens not shown)", response=webhooks_ref,
            description="Needs MANAGE_WEBHOOKS in the server.")
    api.add("GET", one, get, tag="webhooks", summary="One webhook (token not shown)", response=webhook_ref,
            description=manage)
    api.add("PATCH", one, patch, tag="webhooks", summary="Rename a webhook or change its avatar",
            request=PATCH_BODY, response=webhook_ref, description=manage)
    api.add("DELETE", one, delete, tag="webhooks", summary="Delete a webhook; its token stops working",
            response={"type": "object"}, description=manage)
    api.add("POST", one + "/{token}", execute, tag="webhooks", summary="Post a message as the webhook",
            request=EXECUTE_BODY, auth=False, status=204, rate_limited=True,
            description="No authentication: the token is the credential (unknown webhook or wrong token: "
                        "404). 'username' and 'avatar_url' override the webhook's for this message. "
                        "Rate limited per webhook (limits.webhook_per_second / webhook_burst): 429 "
                        "M_LIMIT_EXCEEDED with retry_after_ms.")
