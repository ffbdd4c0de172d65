"""Relations between events: threads, edits, reactions, references (event_relations)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction


@dataclass(frozen=True)
class ThreadSummary:
    count: int
    latest_event_id: str
    participants: frozenset[str]


def _in(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


class RelationStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def page(self, target: str, rel_type: str | None, event_type: str | None, from_stream: int | None,
                   backwards: bool, limit: int, to_stream: int | None = None) -> list[tuple[str, int]]:
        """(event_id, stream) of events relating to ``target``, newest first when backwards."""
        def txn_func(txn: Transaction):
            where, args = ["relates_to_id = ?"], [target]
            if rel_type is not None:
                where.append("rel_type = ?")
                args.append(rel_type)
            if event_type is not None:
                where.append("type = ?")
                args.append(event_type)
            if from_stream is not None:
                where.append("stream_ordering < ?" if backwards else "stream_ordering >= ?")
                args.append(from_stream)
            if to_stream is not None:
                where.append("stream_ordering > ?" if backwards else "stream_ordering < ?")
                args.append(to_stream)
            order = "DESC" if backwards else "ASC"
            return txn.select_all(f"SELECT event_id, stream_ordering FROM event_relations WHERE {' AND '.join(where)}"
                                  f" ORDER BY stream_ordering {order} LIMIT ?", [*args, limit])
        return [(r[0], r[1]) for r in await self.db.run_interaction("relations_page", txn_func)]

    async def thread_summaries(self, roots: list[str]) -> dict[str, ThreadSummary]:
        if not roots:
            return {}

        def txn_func(txn: Transaction):
            rows = txn.select_all(
                f"SELECT relates_to_id, event_id, sender, stream_ordering FROM event_relations"
                f" WHERE rel_type = 'm.thread' AND relates_to_id IN ({_in(roots)})", roots)
            summaries: dict[str, ThreadSummary] = {}
            grouped: dict[str, list] = {}
            for root, event_id, sender, stream in rows:
                grouped.setdefault(root, []).append((stream, event_id, sender))
            for root, items in grouped.items():
                items.sort()
                summaries[root] = ThreadSummary(len(items), items[-1][1], frozenset(i[2] for i in items))
            return summaries
        return await self.db.run_interaction("thread_summaries", txn_func)

    async def replacements(self, targets: list[str]) -> dict[str, list[tuple[str, str, int]]]:
        """target -> [(edit event_id, sender, stream)] oldest first."""
        if not targets:
            return {}
        rows = await self.db.run_interaction("replacements", lambda txn: txn.select_all(
            f"SELECT relates_to_id, event_id, sender, stream_ordering FROM event_relations"
            f" WHERE rel_type = 'm.replace' AND relates_to_id IN ({_in(targets)}) ORDER BY stream_ordering", targets))
        found: dict[str, list] = {}
        for target, event_id, sender, stream in rows:
            found.setdefault(target, []).append((event_id, sender, stream))
        return found

    async def references(self, targets: list[str]) -> dict[str, list[str]]:
        if not targets:
            return {}
        rows = await self.db.run_interaction("references", lambda txn: txn.select_all(
            f"SELECT relates_to_id, event_id FROM event_relations WHERE rel_type = 'm.reference'"
            f" AND relates_to_id IN ({_in(targets)}) ORDER BY stream_ordering", targets))
        found: dict[str, list[str]] = {}
        for target, event_id in rows:
            found.setdefault(target, []).append(event_id)
        return found

    async def threads(self, room_id: str, participant: str | None, before: int | None,
                      limit: int) -> list[tuple[str, int]]:
        """(root, latest activity stream) of the room's threads, most recently active first."""
        def txn_func(txn: Transaction):
            having = "HAVING MAX(stream_ordering) < ?" if before is not None else ""
            args: list = [room_id]
            participant_clause = ""
            if participant is not None:
                participant_clause = (" AND relates_to_id IN (SELECT relates_to_id FROM event_relations"
                                      " WHERE room_id = ? AND rel_type = 'm.thread' AND sender = ?"
                                      " UNION SELECT event_id FROM events WHERE room_id = ? AND sender = ?)")
                args += [room_id, participant, room_id, participant]
            if before is not None:
                args.append(before)
            return txn.select_all(
                f"SELECT relates_to_id, MAX(stream_ordering) AS latest FROM event_relations"
                f" WHERE room_id = ? AND rel_type = 'm.thread'{participant_clause}"
                f" GROUP BY relates_to_id {having} ORDER BY latest DESC LIMIT ?", [*args, limit])
        return [(r[0], r[1]) for r in await self.db.run_interaction("threads", txn_func)]
