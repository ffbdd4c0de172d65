"""Channel messages on Matrix events (DESIGN.md §2): what ``/channels/{id}/messages`` does.

- A message is an ``m.room.message`` (``msgtype: m.text``): the Markdown source in
  ``body``, the rendered, sanitized HTML in ``formatted_body``
  (``format: org.matrix.custom.html``), ``m.mentions`` for pings, and
  ``m.relates_to.m.in_reply_to`` for a reply.
- An edit is an ``m.room.message`` with ``m.relates_to`` ``rel_type: m.replace`` and the
  new content in ``m.new_content``; only the author's edits count, the newest wins.
- A delete is a redaction; a reaction an ``m.reaction`` ``m.annotation`` (removed by
  redacting it); pins the list in ``m.room.pinned_events``.

``@everyone`` / ``@here`` without MENTION_EVERYONE: as in Discord, the message is sent
but pings nobody; ``m.mentions.room`` is not set, and the mention in ``body`` is broken
with a zero-width space (``@\u200beveryone``) so that no client pings on it and the
event does not ask for MENTION_EVERYONE (``permissions.required_permission``).
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.api.users import iso_timestamp
from homeserver.drocsid import markdown
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.server_state import Channel, Server
from homeserver.handlers.filtering import parse_event_filter
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found

MAX_CONTENT = 4000
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_PINS = 50
MAX_REACTIONS_READ = 2000
HTML_FORMAT = "org.matrix.custom.html"

_MASS_MENTION = re.compile(r"(?<![\w@.])@(everyone|here)\b")
_USER_MENTION = re.compile(r"(?<![\w@])@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?![\w.-]*[A-Za-z0-9])",
                           re.I)
_MESSAGE_FILTER = parse_event_filter({"types": ["m.room.message"]})


def require(bits: int, permission: int, name: str) -> None:
    if not perms.has_permissions(bits, permission):
        raise forbidden(f"Missing permission {name}")


def check_content(content: Any) -> str:
    if not isinstance(content, str) or not content.strip():
        raise invalid_param("'content' must be between 1 and %d characters" % MAX_CONTENT)
    if len(content) > MAX_CONTENT:
        raise invalid_param("'content' must be at most %d characters" % MAX_CONTENT)
    return content


def _is_edit(event) -> bool:
    relates = event.content.get("m.relates_to")
    return isinstance(relates, dict) and relates.get("rel_type") == "m.replace"


def _text_content(source: str, may_mention_everyone: bool) -> dict:
    """The content of a message (or of an edit's ``m.new_content``) from its Markdown."""
    if not may_mention_everyone:
        source = _MASS_MENTION.sub("@\u200b\\1", source)
    mentions: dict[str, Any] = {}
    users = sorted(set(_USER_MENTION.findall(source)))
    if users:
        mentions["user_ids"] = users
    if may_mention_everyone and _MASS_MENTION.search(source):
        mentions["room"] = True
    return {"msgtype": "m.text", "body": source, "format": HTML_FORMAT,
            "formatted_body": markdown.render(source), "m.mentions": mentions}


class Messages:
    """Message operations in one channel for one user, permissions already loaded."""

    def __init__(self, hs, server: Server, channel: Channel, user_id: str):
        self.hs = hs
        self.server = server
        self.channel = channel
        self.room_id = channel.room_id
        self.user_id = user_id
        self.bits = server.channel_permissions(user_id, channel)
        if channel.kind == "category":
            raise not_found("Unknown channel")

    # -- reading -------------------------------------------------------------------

    async def _message_event(self, message_id: str):
        """The live (not redacted, not an edit) message event, or 404."""
        if not isinstance(message_id, str) or not message_id.startswith("$"):
            raise not_found("Unknown message")
        rows = await self.hs.events.get_event_rows([message_id])
        row = rows.get(message_id)
        event = row.event if row is not None else None
        if (event is None or event.room_id != self.room_id or event.type != "m.room.message" or event.rejected
                or event.soft_failed or event.is_state() or _is_edit(event)):
            raise not_found("Unknown message")
        if not await self.hs.room_reader.may_see(self.user_id, event, row.state_group):
            raise not_found("Unknown message")
        if (await self.hs.events.get_redactions([message_id])).get(message_id) is not None:
            raise not_found("Unknown message")
        return event

    async def _pinned(self) -> list[str]:
        head = await self.hs.room_heads.get(self.room_id)
        event_id = head.state.get(("m.room.pinned_events", "")) if head is not None else None
        event = await self.hs.events.get_event(event_id) if event_id else None
        pinned = event.content.get("pinned") if event is not None else None
        return [p for p in pinned if isinstance(p, str)] if isinstance(pinned, list) else []

    async def _display_names(self, user_ids: set[str]) -> dict[str, str | None]:
        head = await self.hs.room_heads.get(self.room_id)
        wanted = {u: head.state.get(("m.room.member", u)) for u in user_ids} if head is not None else {}
        events = await self.hs.events.get_events([e for e in wanted.values() if e])
        names = {}
        for user_id, event_id in wanted.items():
            name = events[event_id].content.get("displayname") if event_id in events else None
            names[user_id] = name if isinstance(name, str) else user_id[1:].split(":", 1)[0]
        return names

    async def _reactions(self, event_id: str) -> list[dict]:
        related = await self.hs.relations.page(event_id, "m.annotation", "m.reaction", None, False,
                                               MAX_REACTIONS_READ)
        ids = [e for e, _ in related]
        events = await self.hs.events.get_events(ids)
        redacted = await self.hs.events.get_redactions(ids)
        counts: dict[str, dict] = {}
        seen: set[tuple[str, str]] = set()
        for reaction_id in ids:
            event = events.get(reaction_id)
            if event is None or reaction_id in redacted or event.rejected or event.soft_failed:
                continue
            key = event.content.get("m.relates_to", {}).get("key")
            if not isinstance(key, str) or (event.sender, key) in seen:
                continue
            seen.add((event.sender, key))
            entry = counts.setdefault(key, {"key": key, "count": 0, "me": False})
            entry["count"] += 1
            entry["me"] = entry["me"] or event.sender == self.user_id
        return list(counts.values())

    async def _own_reaction(self, event_id: str, key: str) -> list[str]:
        related = await self.hs.relations.page(event_id, "m.annotation", "m.reaction", None, False,
                                               MAX_REACTIONS_READ)
        ids = [e for e, _ in related]
        events = await self.hs.events.get_events(ids)
        redacted = await self.hs.events.get_redactions(ids)
        return [i for i in ids if i in events and i not in redacted and events[i].sender == self.user_id
                and events[i].content.get("m.relates_to", {}).get("key") == key]

    async def objects(self, events: list) -> list[dict]:
        """Message objects of the given message events, edits applied."""
        if not events:
            return []
        ids = [e.event_id for e in events]
        edits = await self.hs.relations.replacements(ids)
        latest: dict[str, str] = {}
        for event in events:
            valid = [edit_id for edit_id, sender, _ in edits.get(event.event_id, []) if sender == event.sender]
            if valid:
                latest[event.event_id] = valid[-1]
        edit_events = await self.hs.events.get_events(list(latest.values()))
        edit_redactions = await self.hs.events.get_redactions(list(latest.values()))
        names = await self._display_names({e.sender for e in events})
        pinned = set(await self._pinned())
        objects = []
        for event in events:
            content = event.content
            edited_at = None
            edit = edit_events.get(latest.get(event.event_id, ""))
            if edit is not None and edit.event_id not in edit_redactions:
                new_content = edit.content.get("m.new_content")
                if isinstance(new_content, dict):
                    content = new_content
                    edited_at = iso_timestamp(edit.origin_server_ts)
            relates = event.content.get("m.relates_to")
            reply = relates.get("m.in_reply_to") if isinstance(relates, dict) else None
            reply_to = reply.get("event_id") if isinstance(reply, dict) else None
            mentions = content.get("m.mentions")
            mentions = mentions if isinstance(mentions, dict) else {}
            user_ids = mentions.get("user_ids")
            body = content.get("body")
            html = content.get("formatted_body") if content.get("format") == HTML_FORMAT else None
            objects.append({
                "id": event.event_id,
                "channel_id": self.room_id,
                "author": {"id": event.sender, "display_name": names.get(event.sender)},
                "content": body if isinstance(body, str) else "",
                # Our own rendering of the source: what another client put there is not trusted.
                "html": markdown.render(body) if isinstance(body, str) and html is not None else None,
                "created_at": iso_timestamp(event.origin_server_ts),
                "edited_at": edited_at,
                "reply_to": reply_to if isinstance(reply_to, str) else None,
                "mentions": [u for u in user_ids if isinstance(u, str)] if isinstance(user_ids, list) else [],
                "mention_everyone": mentions.get("room") is True,
                "reactions": await self._reactions(event.event_id),
                "pinned": event.event_id in pinned,
            })
        return objects

    async def message(self, message_id: str) -> dict:
        return (await self.objects([await self._message_event(message_id)]))[0]

    async def list(self, limit: int, before: str | None) -> list[dict]:
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        if before is not None:
            # Any event of the channel is a cursor, a since-deleted message included.
            cursor = (await self.hs.events.get_events([before])).get(before) if before.startswith("$") else None
            if cursor is None or cursor.room_id != self.room_id or cursor.stream_ordering is None:
                raise invalid_param("'before' must be a message of this channel")
            start = cursor.stream_ordering
        else:
            start = self.hs.notifier.events_position + 1
        found: list = []
        position: int | None = start
        for _ in range(10):
            if len(found) >= limit or position is None:
                break
            chunk, position = await self.hs.room_reader.paginate(self.user_id, self.room_id, position, True,
                                                                 limit - len(found), None, _MESSAGE_FILTER)
            found.extend(e for e, redaction in chunk
                         if redaction is None and not e.is_state() and not _is_edit(e)
                         and not e.rejected and not e.soft_failed)
        return await self.objects(found[:limit])

    # -- writing -------------------------------------------------------------------

    async def send(self, content: Any, reply_to: str | None, nonce: str | None, device_id: str | None) -> dict:
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES, "SEND_MESSAGES")
        source = check_content(content)
        body = _text_content(source, perms.has_permissions(self.bits, perms.P.MENTION_EVERYONE))
        if reply_to is not None:
            await self._message_event(reply_to)
            body["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        txn = (self.user_id, device_id or "", "drocsid:" + nonce) if nonce else None
        event = await self.hs.event_sender.send(self.user_id, self.room_id, "m.room.message", body, client_txn=txn)
        return await self.message(event.event_id)

    async def edit(self, message_id: str, content: Any) -> dict:
        event = await self._message_event(message_id)
        if event.sender != self.user_id:
            raise forbidden("Only the author can edit a message")
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES, "SEND_MESSAGES")
        source = check_content(content)
        new_content = _text_content(source, perms.has_permissions(self.bits, perms.P.MENTION_EVERYONE))
        body = {**{k: v for k, v in new_content.items() if k != "m.mentions"},
                "body": "* " + new_content["body"], "formatted_body": "* " + new_content["formatted_body"],
                "m.new_content": new_content, "m.mentions": new_content["m.mentions"],
                "m.relates_to": {"rel_type": "m.replace", "event_id": message_id}}
        await self.hs.event_sender.send(self.user_id, self.room_id, "m.room.message", body)
        return await self.message(message_id)

    async def delete(self, message_id: str) -> None:
        event = await self._message_event(message_id)
        if event.sender != self.user_id:
            require(self.bits, perms.P.MANAGE_MESSAGES, "MANAGE_MESSAGES")
        await self._redact(message_id)
        if message_id in await self._pinned():
            try:
                await self._set_pins([p for p in await self._pinned() if p != message_id])
            except MatrixError:
                pass  # the author may not change pins: the deleted message is only hidden then

    async def react(self, message_id: str, key: str) -> None:
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.ADD_REACTIONS, "ADD_REACTIONS")
        _check_key(key)
        await self._message_event(message_id)
        if await self._own_reaction(message_id, key):
            return  # already there: idempotent, as in Discord
        await self.hs.event_sender.send(self.user_id, self.room_id, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": message_id, "key": key}})

    async def unreact(self, message_id: str, key: str) -> None:
        _check_key(key)
        await self._message_event(message_id)
        for reaction_id in await self._own_reaction(message_id, key):
            await self._redact(reaction_id)

    async def _redact(self, event_id: str) -> None:
        head = await self.hs.room_heads.get(self.room_id)
        content = {"redacts": event_id} if head is not None and head.version.redacts_in_content else {}
        await self.hs.event_sender.send(self.user_id, self.room_id, "m.room.redaction", content, redacts=event_id)

    async def pins(self) -> list[dict]:
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        events = []
        for event_id in await self._pinned():
            try:
                events.append(await self._message_event(event_id))
            except MatrixError:
                continue  # deleted or unknown: not shown
        return await self.objects(events)

    async def _set_pins(self, pinned: list[str]) -> None:
        await self.hs.event_sender.send(self.user_id, self.room_id, "m.room.pinned_events", {"pinned": pinned},
                                        state_key="")

    async def pin(self, message_id: str) -> None:
        require(self.bits, perms.P.MANAGE_MESSAGES, "MANAGE_MESSAGES")
        await self._message_event(message_id)
        pinned = await self._pinned()
        if message_id in pinned:
            return
        if len(pinned) >= MAX_PINS:
            raise invalid_param("A channel holds at most %d pins" % MAX_PINS)
        await self._set_pins(pinned + [message_id])

    async def unpin(self, message_id: str) -> None:
        require(self.bits, perms.P.MANAGE_MESSAGES, "MANAGE_MESSAGES")
        pinned = await self._pinned()
        if message_id not in pinned:
            raise not_found("Message is not pinned")
        await self._set_pins([p for p in pinned if p != message_id])


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key or len(key) > 64 or any(c.isspace() or ord(c) < 32 for c in key):
        raise invalid_param("Invalid emoji")
