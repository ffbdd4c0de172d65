"""Federation bookkeeping: per-destination send positions and backoff, events relayed
for other servers, which servers are in a room, and invites from other servers."""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.database import DatabasePool, Transaction


@dataclass
class Destination:
    name: str
    last_stream_ordering: int
    retry_last_ts: int = 0
    retry_interval_ms: int = 0


def _server_suffix(server_name: str) -> str:
    # User IDs are @local:server and localparts hold no ':', so this suffix names the server.
    return "%:" + server_name


class FederationStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    # -- destinations -----------------------------------------------------------------

    async def get_destinations(self) -> dict[str, Destination]:
        rows = await self.db.run_interaction("get_destinations", lambda txn: txn.select_all(
            "SELECT destination, last_stream_ordering, retry_last_ts, retry_interval_ms FROM federation_destinations"))
        return {r[0]: Destination(r[0], r[1], r[2], r[3]) for r in rows}

    async def add_destination(self, destination: Destination) -> None:
        await self.db.run_interaction("add_destination", lambda txn: txn.execute(
            "INSERT INTO federation_destinations (destination, last_stream_ordering, retry_last_ts,"
            " retry_interval_ms) VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO NOTHING",
            (destination.name, destination.last_stream_ordering, destination.retry_last_ts,
             destination.retry_interval_ms)))

    async def save_destination(self, destination: Destination) -> None:
        await self.db.run_interaction("save_destination", lambda txn: txn.execute(
            "UPDATE federation_destinations SET last_stream_ordering = ?, retry_last_ts = ?, retry_interval_ms = ?"
            " WHERE destination = ?", (destination.last_stream_ordering, destination.retry_last_ts,
                                       destination.retry_interval_ms, destination.name)))

    # -- what to send -------------------------------------------------------------------

    async def pending_event_ids(self, destination: str, our_server: str, after: int,
                                limit: int) -> list[tuple[int, str]]:
        """(stream, event ID) of events to send ``destination`` after ``after``: ours and
        those relayed for others, in rooms it has members in (or about its users)."""
        def txn_func(txn: Transaction) -> list[tuple[int, str]]:
            dest = _server_suffix(destination)
            return [(r[0], r[1]) for r in txn.select_all(
                "SELECT e.stream_ordering, e.event_id FROM events e"
                " WHERE e.stream_ordering > ? AND NOT e.outlier AND NOT e.soft_failed AND e.rejected_reason IS NULL"
                " AND (e.sender LIKE ? OR e.event_id IN (SELECT event_id FROM federation_relayed_events"
                "      WHERE origin <> ?))"
                # Rooms where one of its users is joined, from that join on (no history
                # from before it), and membership events about its users.
                " AND (EXISTS (SELECT 1 FROM current_state cs JOIN events j ON j.event_id = cs.event_id"
                "      WHERE cs.room_id = e.room_id AND cs.type = 'm.room.member' AND cs.membership = 'join'"
                "      AND cs.state_key LIKE ? AND j.stream_ordering <= e.stream_ordering)"
                "      OR (e.type = 'm.room.member' AND e.state_key LIKE ?))"
                " ORDER BY e.stream_ordering LIMIT ?",
                (after, _server_suffix(our_server), destination, dest, dest, limit))]
        return await self.db.run_interaction("pending_event_ids", txn_func)

    async def record_relayed(self, event_id: str, room_id: str, origin: str) -> None:
        """Mark an event to pass on to the room's other servers (recorded before it is
        persisted, so the sender never reads past it unmarked)."""
        await self.db.run_interaction("record_relayed", lambda txn: txn.execute(
            "INSERT INTO federation_relayed_events (event_id, room_id, origin) VALUES (?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING", (event_id, room_id, origin)))

    async def servers_in_room(self, room_id: str) -> set[str]:
        rows = await self.db.run_interaction("servers_in_room", lambda txn: txn.select_all(
            "SELECT state_key FROM current_state WHERE room_id = ? AND type = 'm.room.member' AND membership = 'join'",
            (room_id,)))
        return {r[0].split(":", 1)[1] for r in rows if ":" in r[0]}

    async def rooms_shared_with_server(self, server_name: str, room_ids: list[str] | None = None) -> set[str]:
        rows = await self.db.run_interaction("rooms_shared_with_server", lambda txn: txn.select_all(
            "SELECT DISTINCT room_id FROM current_state WHERE type = 'm.room.member' AND membership = 'join'"
            " AND state_key LIKE ?", (_server_suffix(server_name),)))
        found = {r[0] for r in rows}
        return found if room_ids is None else found & set(room_ids)

    # -- invites from other servers ------------------------------------------------------

    async def store_remote_invite(self, room_id: str, version: str, user_id: str, event_id: str,
                                  invite_room_state: list) -> None:
        """Record an invite into a room we are not in, so the invitee's sync shows it.
        The invite event itself is stored (as an outlier) by the caller first."""
        def txn_func(txn: Transaction) -> None:
            txn.execute("INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
                        " VALUES (?, ?, ?, FALSE, 0) ON CONFLICT (room_id) DO NOTHING", (room_id, version, user_id))
            txn.execute("INSERT INTO remote_invites (room_id, user_id, event_id, invite_room_state) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (room_id, user_id) DO UPDATE SET event_id = excluded.event_id,"
                        " invite_room_state = excluded.invite_room_state",
                        (room_id, user_id, event_id, json.dumps(invite_room_state)))
            self._set_membership_txn(txn, room_id, user_id, event_id, "invite")
        await self.db.run_interaction("store_remote_invite", txn_func)

    @staticmethod
    def _set_membership_txn(txn: Transaction, room_id: str, user_id: str, event_id: str, membership: str) -> None:
        txn.execute("INSERT INTO current_state (room_id, type, state_key, event_id, membership)"
                    " VALUES (?, 'm.room.member', ?, ?, ?) ON CONFLICT (room_id, type, state_key)"
                    " DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership",
                    (room_id, user_id, event_id, membership))

    async def record_out_of_room_membership(self, room_id: str, user_id: str, event_id: str,
                                            membership: str) -> None:
        """A leave or knock of ours in a room we are not in (declined invite, knock)."""
        def txn_func(txn: Transaction) -> None:
            if membership != "invite":
                txn.execute("DELETE FROM remote_invites WHERE room_id = ? AND user_id = ?", (room_id, user_id))
            self._set_membership_txn(txn, room_id, user_id, event_id, membership)
        await self.db.run_interaction("record_out_of_room_membership", txn_func)

    async def get_remote_invite_state(self, room_id: str, user_id: str) -> list | None:
        row = await self.db.run_interaction("get_remote_invite_state", lambda txn: txn.select_one(
            "SELECT invite_room_state FROM remote_invites WHERE room_id = ? AND user_id = ?", (room_id, user_id)))
        return json.loads(row[0]) if row else None
