"""Threads of a channel on Matrix threads (DESIGN.md §2): what ``/channels/{id}/threads`` does.

- A thread is the ``m.thread`` relation to a root message; its ID is the root's event ID.
- Creating one sends the thread's first event: an ``m.notice`` in the thread whose
  content carries the name under ``io.drocsid.thread_name`` (a Matrix client shows it as
  "started a thread"). The first such event of a thread names it; a thread started by a
  plain Matrix client has no such event and is named after its root's text.
- The naming event is not a message of the thread: it is left out of the thread's
  listing and of its ``message_count``.
- Activity (the newest event, the count) comes from the relations store, as for
  ``/_matrix/client/v1/rooms/{roomId}/threads``.
"""

from __future__ import annotations

from typing import Any

from homeserver.api.users import iso_timestamp
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.messages import THREAD_NAME_KEY, Messages, is_thread_name, require, thread_root
from homeserver.http.errors import MatrixError, invalid_param

MAX_NAME = 100
MAX_THREADS_LISTED = 100
# Naming events are looked for among a thread's first events (a thread is named at once).
_NAME_SEARCH = 20


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise invalid_param("'name' must be between 1 and %d characters" % MAX_NAME)
    return name.strip()


def name_content(root_id: str, name: str) -> dict:
    """The content of the event that starts and names a thread."""
    return {"msgtype": "m.notice", "body": f"started a thread: {name}", THREAD_NAME_KEY: name,
            "m.mentions": {},
            "m.relates_to": {"rel_type": "m.thread", "event_id": root_id, "is_falling_back": True,
                             "m.in_reply_to": {"event_id": root_id}}}


def _fallback_name(root) -> str:
    body = root.content.get("body") if root is not None else None
    text = " ".join(body.split()) if isinstance(body, str) else ""
    return text[:MAX_NAME] or "Thread"


class Threads:
    """Thread operations in one channel for one user (permissions from ``messages``)."""

    def __init__(self, messages: Messages):
        self.messages = messages
        self.hs = messages.hs
        self.room_id = messages.room_id

    async def _name_event(self, root_id: str):
        related = await self.hs.relations.page(root_id, "m.thread", "m.room.message", None, False, _NAME_SEARCH)
        events = await self.hs.events.get_events([e for e, _ in related])
        redacted = await self.hs.events.get_redactions(list(events))
        for event_id, _ in related:
            event = events.get(event_id)
            if event is not None and event_id not in redacted and is_thread_name(event) \
                    and not event.rejected and not event.soft_failed:
                return event
        return None

    async def _thread(self, root, activity: int | None = None) -> dict:
        summary = (await self.hs.relations.thread_summaries([root.event_id])).get(root.event_id)
        named = await self._name_event(root.event_id)
        latest = await self.hs.events.get_event(summary.latest_event_id) if summary is not None else None
        count = summary.count if summary is not None else 0
        name = named.content[THREAD_NAME_KEY] if named is not None else _fallback_name(root)
        return {
            "id": root.event_id,
            "channel_id": self.room_id,
            "name": name,
            "message_id": root.event_id,
            "owner_id": named.sender if named is not None else root.sender,
            "message_count": max(count - (1 if named is not None else 0), 0),
            "last_message_id": latest.event_id if latest is not None and not is_thread_name(latest) else None,
            "last_activity_at": iso_timestamp((latest or root).origin_server_ts),
            "created_at": iso_timestamp((named or latest or root).origin_server_ts),
        }

    async def create(self, name: Any, message_id: str | None) -> dict:
        bits = self.messages.bits
        require(bits, perms.P.VIEW_CHANNEL | perms.P.SEND_MESSAGES, "SEND_MESSAGES")
        name = check_name(name)
        if message_id is None:
            # No starter message: the thread starts from a message carrying its name.
            message_id = (await self.messages.send(name, None, None, None))["id"]
        root = await self.messages.thread_root_event(message_id)
        if root.event_id in await self.hs.relations.thread_summaries([root.event_id]):
            raise MatrixError(400, "M_INVALID_PARAM", "This message already has a thread")
        await self.hs.event_sender.send(self.messages.user_id, self.room_id, "m.room.message",
                                        name_content(root.event_id, name))
        return await self._thread(root)

    async def list(self, limit: int = MAX_THREADS_LISTED) -> list[dict]:
        """The channel's threads the user can see, most recently active first."""
        require(self.messages.bits, perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        rows = await self.hs.relations.threads(self.room_id, None, None, limit)
        threads = []
        for root_id, _ in rows:
            try:
                root = await self.messages.thread_root_event(root_id)
            except MatrixError:
                continue  # a deleted or invisible root: its thread is gone with it
            threads.append(await self._thread(root))
        return threads

    async def get(self, thread_id: str) -> dict:
        require(self.messages.bits, perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        return await self._thread(await self.messages.thread_root_event(thread_id))

    async def thread_messages(self, thread_id: str, limit: int, before: str | None) -> list[dict]:
        """A page of the thread's messages, newest first (the root and the naming event not included)."""
        require(self.messages.bits, perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        await self.messages.thread_root_event(thread_id)
        start = None
        if before is not None:
            cursor = (await self.hs.events.get_events([before])).get(before) if before.startswith("$") else None
            if cursor is None or thread_root(cursor) != thread_id or cursor.stream_ordering is None:
                raise invalid_param("'before' must be a message of this thread")
            start = cursor.stream_ordering
        ignored = await self.hs.sync.ignored_users(self.messages.user_id)  # blocked users stay hidden
        found: list = []
        for _ in range(10):
            related = await self.hs.relations.page(thread_id, "m.thread", "m.room.message", start, True,
                                                   limit - len(found) + 1)
            if not related:
                break
            exhausted = len(related) < limit - len(found) + 1
            start = related[-1][1]
            ids = [e for e, _ in related]
            rows = await self.hs.events.get_event_rows(ids)
            redacted = await self.hs.events.get_redactions(ids)
            for event_id in ids:
                row = rows.get(event_id)
                event = row.event if row is not None else None
                if (event is None or event_id in redacted or event.rejected or event.soft_failed
                        or is_thread_name(event) or event.sender in ignored):
                    continue
                if await self.hs.room_reader.may_see(self.messages.user_id, event, row.state_group):
                    found.append(event)
            if len(found) >= limit or exhausted:
                break
        return await self.messages.objects(found[:limit])
