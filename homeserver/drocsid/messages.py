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

Attachments are media-repository uploads (``mxc://``): each file is an event of its own
(``m.image``/``m.video``/``m.audio``/``m.file`` with ``url``, ``filename`` and ``info``),
so every Matrix client shows every file; the text goes with the first file as its caption
(``body`` differing from ``filename``, as Matrix media captions do). A file must be one
the sender uploaded here.

A thread is an ``m.thread`` relation to its root message (the thread's ID is the root's
event ID). Thread replies are left out of the channel's own listing, as in Discord; they
are listed per thread (``homeserver.drocsid.threads``).
"""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import quote

from PIL import Image

from homeserver.api.users import iso_timestamp
from homeserver.drocsid import markdown
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.server_state import Channel, Server
from homeserver.drocsid.webhooks import webhook_author
from homeserver.handlers.filtering import parse_event_filter
from homeserver.http.errors import MatrixError, forbidden, invalid_param, missing_param, not_found
from homeserver.media.repository import DEFAULT_CONTENT_TYPE, valid_media_id

MAX_CONTENT = 4000
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_PINS = 50
MAX_REACTIONS_READ = 2000
HTML_FORMAT = "org.matrix.custom.html"
MAX_ATTACHMENTS = 10
MEDIA_MSGTYPES = frozenset({"m.image", "m.video", "m.audio", "m.file"})
# The content key of the event that names a thread (homeserver.drocsid.threads).
THREAD_NAME_KEY = "io.drocsid.thread_name"

_MASS_MENTION = re.compile(r"(?<![\w@.])@(everyone|here)\b")
_EVERYONE_MENTION = re.compile(r"(?<![\w@.])@everyone\b")
_ROLE_MENTION = re.compile(r"<@&([A-Za-z0-9_-]{1,64})>")
MENTION_ROLES = "io.drocsid.mention_roles"
MENTION_HERE = "io.drocsid.here"  # in m.mentions: an @here, resolved to the members online
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


def thread_root(event) -> str | None:
    """The root of the thread the event is in (its ``m.thread`` relation), if any."""
    relates = event.content.get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.thread":
        root = relates.get("event_id")
        return root if isinstance(root, str) else None
    return None


def is_thread_name(event) -> bool:
    return thread_root(event) is not None and isinstance(event.content.get(THREAD_NAME_KEY), str)


def msgtype_for(content_type: str) -> str:
    major = content_type.split("/", 1)[0].strip().lower()
    return {"image": "m.image", "video": "m.video", "audio": "m.audio"}.get(major, "m.file")


def parse_mxc(uri: Any) -> tuple[str, str] | None:
    if not isinstance(uri, str) or not uri.startswith("mxc://"):
        return None
    server, _, media_id = uri[len("mxc://"):].partition("/")
    return (server, media_id) if server and valid_media_id(media_id) else None


def download_url(uri: str) -> str | None:
    """Where a client downloads an ``mxc://`` URI (authenticated media)."""
    parsed = parse_mxc(uri)
    if parsed is None:
        return None
    return "/_matrix/client/v1/media/download/%s/%s" % (quote(parsed[0], safe=""), parsed[1])


def attachment_of(content: dict) -> dict | None:
    """The attachment a media message carries, in /api/v1 shape; None for other messages."""
    if content.get("msgtype") not in MEDIA_MSGTYPES:
        return None
    url = content.get("url")
    link = download_url(url)
    if link is None:
        return None
    info = content.get("info") if isinstance(content.get("info"), dict) else {}
    filename = content.get("filename") if isinstance(content.get("filename"), str) else content.get("body")
    mimetype = info.get("mimetype")

    def number(value):
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    attachment = {"id": url, "filename": filename if isinstance(filename, str) else "file",
                  "content_type": mimetype if isinstance(mimetype, str) else DEFAULT_CONTENT_TYPE,
                  "size": number(info.get("size")), "url": link}
    if number(info.get("w")) is not None and number(info.get("h")) is not None:
        attachment["width"], attachment["height"] = info["w"], info["h"]
    return attachment


def caption_of(content: dict) -> str:
    """A media message's caption: its ``body`` when a ``filename`` differs from it."""
    body, filename = content.get("body"), content.get("filename")
    return body if isinstance(body, str) and isinstance(filename, str) and body != filename else ""


def image_size(data: bytes) -> tuple[int, int] | None:
    """An image's width and height from its header (Pillow reads no pixels for this)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Exception:  # not an image Pillow knows: sent without dimensions
        return None
    return (width, height) if width > 0 and height > 0 else None


def _media_content(upload: dict, text: dict | None) -> dict:
    """A media message for one upload; ``text`` (a text message's content) as its caption."""
    content = {"msgtype": msgtype_for(upload["content_type"]), "body": upload["filename"],
               "filename": upload["filename"], "url": upload["id"], "info": dict(upload["info"]),
               "m.mentions": {}}
    if text is not None:
        content.update({k: text[k] for k in ("body", "format", "formatted_body", "m.mentions")})
    return content


def _text_content(source: str, may_mention_everyone: bool, role_members=None,
                  here_members: list[str] | None = None) -> dict:
    """The content of a message (or of an edit's ``m.new_content``) from its Markdown.

    ``role_members(role_ids)`` -> (the role IDs that may be pinged, their members): a role
    mention ``<@&role_id>`` pings the role's members, so Matrix has no role mention:
    they are listed in ``m.mentions.user_ids`` (their push rules highlight it) and the
    roles in ``io.drocsid.mention_roles``."""
    if not may_mention_everyone:
        source = _MASS_MENTION.sub("@\u200b\\1", source)
    mentions: dict[str, Any] = {}
    users = set(_USER_MENTION.findall(source))
    roles: list[str] = []
    named_roles = sorted(set(_ROLE_MENTION.findall(source)))
    if named_roles and role_members is not None:
        roles, members = role_members(named_roles)
        users |= set(members)
    if may_mention_everyone and _EVERYONE_MENTION.search(source):
        mentions["room"] = True
    elif may_mention_everyone and _MASS_MENTION.search(source):
        # @here: the members who are online (idle and do-not-disturb count), not the room.
        users |= set(here_members or ())
        mentions[MENTION_HERE] = True
    if users:
        mentions["user_ids"] = sorted(users)
    content = {"msgtype": "m.text", "body": source, "format": HTML_FORMAT,
               "formatted_body": markdown.render(source), "m.mentions": mentions}
    if roles:
        content[MENTION_ROLES] = roles
    return content


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

    async def objects(self, events: list, *, fresh: bool = False) -> list[dict]:
        """Message objects of the given message events, edits applied. ``fresh``: events
        just sent, which nothing can have edited or reacted to yet (no lookups for that)."""
        if not events:
            return []
        ids = [e.event_id for e in events]
        edits = {} if fresh else await self.hs.relations.replacements(ids)
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
            attachment = attachment_of(content) or attachment_of(event.content)
            relates = event.content.get("m.relates_to")
            reply = relates.get("m.in_reply_to") if isinstance(relates, dict) else None
            reply_to = reply.get("event_id") if isinstance(reply, dict) else None
            if isinstance(relates, dict) and relates.get("is_falling_back") is True:
                reply_to = None  # a thread's fallback for older clients, not a reply
            mentions = content.get("m.mentions")
            mentions = mentions if isinstance(mentions, dict) else {}
            user_ids = mentions.get("user_ids")
            body = content.get("body") if attachment_of(content) is None else caption_of(content)
            html = content.get("formatted_body") if content.get("format") == HTML_FORMAT else None
            objects.append({
                "id": event.event_id,
                "channel_id": self.room_id,
                "author": webhook_author(event) or {"id": event.sender, "display_name": names.get(event.sender)},
                "content": body if isinstance(body, str) else "",
                # Our own rendering of the source: what another client put there is not trusted.
                "html": markdown.render(body) if isinstance(body, str) and html is not None else None,
                "created_at": iso_timestamp(event.origin_server_ts),
                "edited_at": edited_at,
                "reply_to": reply_to if isinstance(reply_to, str) else None,
                "mentions": [u for u in user_ids if isinstance(u, str)] if isinstance(user_ids, list) else [],
                "mention_everyone": mentions.get("room") is True or mentions.get(MENTION_HERE) is True,
                "mention_roles": [r for r in content.get(MENTION_ROLES, []) if isinstance(r, str)]
                if isinstance(content.get(MENTION_ROLES), list) else [],
                "reactions": [] if fresh else await self._reactions(event.event_id),
                "pinned": event.event_id in pinned,
                "attachments": [attachment] if attachment is not None else [],
                "thread_id": thread_root(event),
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
        ignored = await self.hs.sync.ignored_users(self.user_id)  # blocked users' messages are hidden
        for _ in range(10):
            if len(found) >= limit or position is None:
                break
            chunk, position = await self.hs.room_reader.paginate(self.user_id, self.room_id, position, True,
                                                                 limit - len(found), None, _MESSAGE_FILTER)
            found.extend(e for e, redaction in chunk
                         if redaction is None and not e.is_state() and not _is_edit(e)
                         and thread_root(e) is None and not e.rejected and not e.soft_failed
                         and e.sender not in ignored)
        return await self.objects(found[:limit])

    # -- writing -------------------------------------------------------------------

    def _role_members(self, role_ids: list[str]) -> tuple[list[str], list[str]]:
        """The named roles one may ping here (mentionable ones, or any with
        MENTION_EVERYONE) and the server's joined members holding them."""
        roles = getattr(self.server, "roles", None)
        if not roles:
            return [], []  # a DM: no roles
        may_any = perms.has_permissions(self.bits, perms.P.MENTION_EVERYONE)
        pinged = [r for r in role_ids if r in roles and not roles[r].is_everyone
                  and (roles[r].mentionable or may_any)]
        holders = self.server.member_roles
        members = sorted(u for u in self.server.members if set(holders.get(u, ())) & set(pinged))
        return pinged, members

    async def _here_members(self, source: str) -> list[str]:
        """For an @here: the channel's other members who are online, idle or do-not-disturb."""
        if not _MASS_MENTION.search(source) or _EVERYONE_MENTION.search(source):
            return []
        members = [u for u, m in self.channel.state.memberships.items() if m == "join" and u != self.user_id]
        rows = await self.hs.presence_store.get(members) if members else []
        return sorted(row.user_id for row in rows if row.state in ("online", "unavailable"))

    async def send(self, content: Any, reply_to: str | None, nonce: str | None, device_id: str | None,
                   attachments: Any = None, thread_id: str | None = None) -> dict:
        """Send a message: text, files (one event each, the text as the first's caption), or
        both; into a thread when ``thread_id`` (a root message) is given. Returns the first."""
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES, "SEND_MESSAGES")
        uploads = await self._uploads(attachments)
        if content is None and not uploads:
            raise missing_param("content")
        text = None
        if content is not None:
            source = check_content(content)
            text = _text_content(source, perms.has_permissions(self.bits, perms.P.MENTION_EVERYONE),
                                 self._role_members, await self._here_members(source))
        if reply_to is not None:
            await self._message_event(reply_to)
        relation = await self._relation(reply_to, thread_id)
        bodies = [_media_content(u, text if i == 0 else None) for i, u in enumerate(uploads)] or [text]
        first = None
        started_ms = self.hs.clock.time_ms()
        for index, body in enumerate(bodies):
            relates = relation(index == 0)
            if relates is not None:
                body["m.relates_to"] = relates
            # One nonce covers the whole send: each of its events has its own transaction.
            txn = (self.user_id, device_id or "", "drocsid:" + nonce + (":%d" % index if index else "")) \
                if nonce else None
            event = await self.hs.event_sender.send(self.user_id, self.room_id, "m.room.message", body,
                                                    client_txn=txn)
            first = first or event
        if first.origin_server_ts >= started_ms:
            # Built by this call (a retried nonce answers an older event, read in full).
            return (await self.objects([first], fresh=True))[0]
        return await self.message(first.event_id)

    async def thread_root_event(self, thread_id: Any):
        """The root message of a thread (or of a thread to be), 404 if unknown."""
        root = await self._message_event(thread_id)
        if thread_root(root) is not None:
            raise invalid_param("A message in a thread cannot start a thread")
        return root

    async def _relation(self, reply_to: str | None, thread_id: str | None):
        """``relation(first)``: the ``m.relates_to`` of the first event of a send or of a later one."""
        if thread_id is None:
            reply = {"m.in_reply_to": {"event_id": reply_to}} if reply_to is not None else None
            return lambda first: reply if first else None
        await self.thread_root_event(thread_id)
        latest = (await self.hs.relations.thread_summaries([thread_id])).get(thread_id)
        fallback = latest.latest_event_id if latest is not None else thread_id

        def relation(first: bool) -> dict:
            replying = first and reply_to is not None
            return {"rel_type": "m.thread", "event_id": thread_id, "is_falling_back": not replying,
                    "m.in_reply_to": {"event_id": reply_to if replying else fallback}}
        return relation

    async def _uploads(self, attachments: Any) -> list[dict]:
        """The uploads a send names: media of this server that the sender uploaded."""
        if attachments is None or attachments == []:
            return []
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.ATTACH_FILES, "ATTACH_FILES")
        if (not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS
                or len(set(map(str, attachments))) != len(attachments)):
            raise invalid_param("'attachments' must be at most %d distinct uploads" % MAX_ATTACHMENTS)
        repository = self.hs.media_repository
        uploads = []
        for uri in attachments:
            parsed = parse_mxc(uri)
            media = await repository.store.get_local_media(parsed[1]) \
                if parsed is not None and parsed[0] == repository.server_name else None
            if media is None or not media.uploaded or media.uploader != self.user_id:
                raise invalid_param("'attachments' must be files you uploaded")
            content_type = (media.content_type or DEFAULT_CONTENT_TYPE).split(";", 1)[0].strip()
            info: dict[str, Any] = {"mimetype": content_type, "size": media.size_bytes or 0}
            if content_type.startswith("image/"):
                served = await repository.get_content(parsed[0], parsed[1], allow_remote=False)
                size = image_size(served.data)
                if size is not None:
                    info["w"], info["h"] = size
            uploads.append({"id": uri, "filename": media.upload_name or "file", "content_type": content_type,
                            "info": info})
        return uploads

    async def edit(self, message_id: str, content: Any) -> dict:
        event = await self._message_event(message_id)
        if event.sender != self.user_id:
            raise forbidden("Only the author can edit a message")
        require(self.bits, perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES, "SEND_MESSAGES")
        source = check_content(content)
        new_content = _text_content(source, perms.has_permissions(self.bits, perms.P.MENTION_EVERYONE),
                                    self._role_members, await self._here_members(source))
        if attachment_of(event.content) is not None:
            # The caption changes; the file stays.
            new_content = {**{k: event.content[k] for k in ("msgtype", "url", "info", "filename")
                              if k in event.content}, **{k: v for k, v in new_content.items() if k != "msgtype"}}
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
        # As the pinner, or as the owner when the pinner's Matrix power falls short.
        from homeserver.drocsid.servers import _send_as
        owner_id = getattr(self.server, "owner_id", self.user_id)  # a DM has no owner
        await _send_as(self.hs, self.user_id, owner_id, self.room_id, "m.room.pinned_events", {"pinned": pinned})

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
