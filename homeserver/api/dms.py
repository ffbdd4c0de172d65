"""``/dms``: direct messages and group DMs, which are Matrix rooms (DESIGN.md §2; the
rules are in ``homeserver.drocsid.dms``). Their messages go through
``/channels/{dm_id}/messages`` like a channel's."""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.drocsid import dms
from homeserver.http.errors import invalid_param

DM_SCHEMA = {
    "type": "object",
    "required": ["id", "type", "recipients", "last_message_id"],
    "properties": {
        "id": {"type": "string", "description": "The DM's Matrix room ID", "examples": ["!abc:example.org"]},
        "type": {"type": "string", "enum": ["dm", "group_dm"]},
        "recipients": {"type": "array", "description": "The other members (joined or invited)", "items": {
            "type": "object", "properties": {"id": {"type": "string"},
                                             "display_name": {"type": ["string", "null"]}}}},
        "last_message_id": {"type": ["string", "null"], "description": "The newest message's event ID"},
    },
}

OPEN_BODY = {
    "type": "object",
    "required": ["recipient_id"],
    "properties": {"recipient_id": {"type": "string", "minLength": 1, "description": "A Matrix user ID"}},
}

GROUP_BODY = {
    "type": "object",
    "required": ["recipient_ids"],
    "properties": {"recipient_ids": {"type": "array", "items": {"type": "string"},
                                     "description": "1 to 9 Matrix user IDs (10 members with you)"}},
}


def _recipient_ids(value) -> list[str]:
    limit = dms.MAX_GROUP_MEMBERS - 1
    if not isinstance(value, list) or not 1 <= len(value) <= limit or not all(isinstance(v, str) for v in value):
        raise invalid_param(f"'recipient_ids' must be 1 to {limit} user IDs")
    return value


def register(api: ApiRoutes, hs) -> None:
    dm_ref = api.schema("DirectMessage", DM_SCHEMA)
    empty = {"type": "object"}

    async def list_all(call: ApiCall):
        return 200, await dms.list_dms(hs, call.requester.user_id)

    async def open_one(call: ApiCall):
        return 200, await dms.open_dm(hs, call.requester.user_id, call.body["recipient_id"])

    async def open_group(call: ApiCall):
        return 200, await dms.open_group(hs, call.requester.user_id, _recipient_ids(call.body["recipient_ids"]))

    async def get(call: ApiCall):
        return 200, await dms.get_dm(hs, call.params["dm_id"], call.requester.user_id)

    async def add(call: ApiCall):
        return 200, await dms.add_recipient(hs, call.requester.user_id, call.params["dm_id"],
                                            call.params["user_id"])

    async def close(call: ApiCall):
        await dms.close(hs, call.requester.user_id, call.params["dm_id"])
        return 200, {}

    api.add("GET", "/dms", list_all, tag="dms", summary="The user's open DMs and group DMs",
            response={"type": "array", "items": dm_ref}, description="Newest activity first.")
    api.add("POST", "/dms", open_one, tag="dms", summary="Open (or reuse) the 1:1 DM with a user",
            request=OPEN_BODY, response=dm_ref,
            description="400 for yourself, 404 for an unknown user, 403 when either of you blocks the other. "
                        "A local recipient is joined at once; a remote one is invited (is_direct).")
    api.add("POST", "/dms/group", open_group, tag="dms", summary="Create a group DM", request=GROUP_BODY,
            response=dm_ref, description="At most 10 members in all; 403 if a recipient blocks you or you them.")
    api.add("GET", "/dms/{dm_id}", get, tag="dms", summary="One DM the user is in", response=dm_ref)
    api.add("PUT", "/dms/{dm_id}/recipients/{user_id}", add, tag="dms", summary="Add a member to a group DM",
            response=dm_ref, description="Any member may add; 400 beyond 10 members or for a 1:1 DM.")
    api.add("DELETE", "/dms/{dm_id}", close, tag="dms", summary="Close a DM (leave its room; history is kept)",
            response=empty)
