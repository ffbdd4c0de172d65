"""Read states (DESIGN.md §2 "read state"): where a user has read to in each channel and DM,
with unread and mention counts, on Matrix receipts.

- Acknowledging a message sets the user's ``m.read`` receipt (unthreaded, so it covers
  thread replies before it too) and their ``m.fully_read`` marker; a marker never moves
  back: acknowledging an older message changes nothing.
- ``unread_count`` and ``mention_count`` are the ``/sync`` ``unread_notifications``
  (``notification_count`` and ``highlight_count``) of the room, from the same counter
  (``homeserver.handlers.unread``), so a Matrix client's badge and ours agree: messages
  after the receipt that the user's push rules notify on, and those that mention the
  user (``m.mentions.user_ids``; ``m.mentions.room`` when the sender's power level
  reaches the room's ``notifications.room``). The user's own messages never count.
- The rooms are the server channels the user has joined and may view, and the DMs
  (rooms of ``m.direct`` account data) they have joined.
"""

from __future__ import annotations

from homeserver.drocsid.server_state import load_server, user_servers
from homeserver.http.errors import not_found


async def _marker_positions(hs, user_id: str, room_ids: list[str]) -> dict[str, tuple[str, int]]:
    """room -> (event ID, stream position) of the user's newest main-timeline read receipt."""
    if not room_ids:
        return {}

    def txn_func(txn):
        found: dict[str, tuple[str, int]] = {}
        for offset in range(0, len(room_ids), 500):
            chunk = room_ids[offset:offset + 500]
            rows = txn.select_all(
                "SELECT r.room_id, r.event_id, e.stream_ordering FROM receipts r"
                " JOIN events e ON e.event_id = r.event_id"
                " WHERE r.user_id = ? AND r.receipt_type IN ('m.read', 'm.read.private')"
                f" AND r.thread_id IN ('', 'main') AND r.room_id IN ({','.join('?' * len(chunk))})",
                [user_id, *chunk])
            for room_id, event_id, position in rows:
                if position is not None and (room_id not in found or position > found[room_id][1]):
                    found[room_id] = (event_id, position)
        return found
    return await hs.db.run_interaction("drocsid_read_markers", txn_func)


async def dm_rooms(hs, user_id: str) -> set[str]:
    """The DM rooms the user has joined (``m.direct``: user ID -> [room IDs])."""
    direct = await hs.account_data.get(user_id, "", "m.direct") or {}
    listed = {room for rooms in direct.values() if isinstance(rooms, list) for room in rooms
              if isinstance(room, str)}
    return listed & set(await hs.rooms.get_rooms_for_user(user_id))


async def channel_rooms(hs, user_id: str) -> list[str]:
    """The text channels (server channels the user joined and may view) and DMs, in order."""
    joined = set(await hs.rooms.get_rooms_for_user(user_id))
    rooms: list[str] = []
    for summary in await user_servers(hs, user_id):
        server = await load_server(hs, summary.room_id)
        if server is None:
            continue
        rooms += [c.room_id for c in server.visible_channels(user_id)
                  if c.kind != "category" and c.room_id in joined and c.room_id not in rooms]
    rooms += sorted((await dm_rooms(hs, user_id)) - set(rooms))
    return rooms


async def read_states(hs, user_id: str) -> list[dict]:
    """``[{channel_id, last_read_message_id, unread_count, mention_count}]`` for every
    channel and DM the user is in."""
    return await read_states_of(hs, user_id, await channel_rooms(hs, user_id))


async def read_states_of(hs, user_id: str, rooms: list[str]) -> list[dict]:
    """The read states of the given rooms (the gateway's READY names them itself)."""
    counts = await hs.unread.counts(user_id, rooms)
    markers = await _marker_positions(hs, user_id, rooms)
    return [{"channel_id": room_id,
             "last_read_message_id": markers[room_id][0] if room_id in markers else None,
             "unread_count": counts.get(room_id, (0, 0))[0],
             "mention_count": counts.get(room_id, (0, 0))[1]} for room_id in rooms]


async def read_state(hs, user_id: str, room_id: str) -> dict:
    counts = (await hs.unread.counts(user_id, [room_id])).get(room_id, (0, 0))
    marker = (await _marker_positions(hs, user_id, [room_id])).get(room_id)
    return {"channel_id": room_id, "last_read_message_id": marker[0] if marker else None,
            "unread_count": counts[0], "mention_count": counts[1]}


async def visible_message(hs, user_id: str, room_id: str, message_id: str):
    """A message event of the room that the user may see, or 404."""
    rows = await hs.events.get_event_rows([message_id]) if message_id.startswith("$") else {}
    row = rows.get(message_id)
    event = row.event if row is not None else None
    if (event is None or event.room_id != room_id or event.type != "m.room.message" or event.is_state()
            or event.rejected or event.soft_failed
            or not await hs.room_reader.may_see(user_id, event, row.state_group)):
        raise not_found("Unknown message")
    return event


async def ack(hs, user_id: str, room_id: str, event) -> bool:
    """Move the user's read receipt and fully-read marker to ``event`` (a message of the
    room, checked by the caller); False when it is not newer than where they are."""
    if event.room_id != room_id or event.stream_ordering is None:
        raise not_found("Unknown message")
    marker = (await _marker_positions(hs, user_id, [room_id])).get(room_id)
    if marker is not None and marker[1] >= event.stream_ordering:
        return False
    await hs.receipts_handler.mark(user_id, room_id, "m.read", event.event_id, "")
    await hs.receipts_handler.mark(user_id, room_id, "m.fully_read", event.event_id, "")
    return True
