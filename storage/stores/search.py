"""Full-text search over room events: the index (SQLite FTS5, PostgreSQL tsvector + GIN),
the little query language clients type, and the follower transaction that fills the
index (and the user directory) from the events table in stream order.

The follower reads events above its stored position, so the index catches up after a
restart with nothing lost; the position moves in the same transaction as the rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from storage.database import DatabasePool, Transaction
from storage.stores.directory import apply_directory_event_txn

# event type -> the key clients name in search_categories.room_events.keys
SEARCH_KEYS = {"m.room.message": "content.body", "m.room.name": "content.name", "m.room.topic": "content.topic"}
ALL_KEYS = ("content.body", "content.name", "content.topic")
# What the follower reads: the searchable types, redactions (which remove rows) and the
# state the user directory follows.
FOLLOWED_TYPES = (*SEARCH_KEYS, "m.room.redaction", "m.room.member", "m.room.join_rules",
                  "m.room.history_visibility")
POSITION_NAME = "discovery"
# With no followed event in a range the position is not written (encrypted traffic
# would otherwise cost a commit per event); it is written at least this often.
_POSITION_WRITE_GAP = 1000
_TS_CONFIG = "'english'"


# -- what is indexed -------------------------------------------------------------------

def _plain_topic(content: dict[str, Any]) -> str | None:
    """The text/plain body of an m.topic list (a missing mimetype means text/plain)."""
    blocks = content.get("m.topic")
    if isinstance(blocks, dict):  # extensible-events shape: {"m.text": [...]}
        blocks = blocks.get("m.text")
    if not isinstance(blocks, list):
        return None
    for block in blocks:
        if isinstance(block, dict) and block.get("mimetype", "text/plain") == "text/plain" \
                and isinstance(block.get("body"), str):
            return block["body"]
    return None


def searchable_text(event_type: str, content: dict[str, Any]) -> str | None:
    """The text search matches for an event, or None when it has none."""
    if event_type == "m.room.message":
        value = content.get("body")
        texts = [value] if isinstance(value, str) else []
    elif event_type == "m.room.name":
        value = content.get("name")
        texts = [value] if isinstance(value, str) else []
    elif event_type == "m.room.topic":
        value = content.get("topic")
        texts = [value] if isinstance(value, str) else []
        plain = _plain_topic(content)
        if plain and plain not in texts:
            texts.append(plain)
    else:
        return None
    text = "\n".join(t for t in texts if t).replace("\x00", "")  # PostgreSQL refuses NUL in text
    return text if text.strip() else None


# -- the query language ------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
# Beyond these, further terms of a query are ignored (a query is matched, not parsed, per row).
MAX_TERMS = 32
MAX_WORDS_PER_TERM = 16
_QUERY_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class Term:
    """One word (matched as a prefix) or a quoted phrase (matched exactly, in order)."""
    words: tuple[str, ...]
    phrase: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """``clauses`` must all match, each by any of its alternatives; ``excluded`` must not."""
    clauses: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.clauses

    def words(self) -> list[str]:
        seen: dict[str, None] = {}
        for clause in self.clauses:
            for term in clause:
                for word in term.words:
                    seen.setdefault(word, None)
        return list(seen)


def parse_search_query(text: str) -> SearchQuery:
    """What a user types, web-search style: words (all must match, each as a prefix),
    "quoted phrases", -excluded words and ``OR`` between alternatives. Punctuation is
    ignored; a word joined by punctuation (``don't``, ``foo_bar``) is a phrase."""
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    for match in _QUERY_TOKEN.finditer(text):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            join_next = bool(clauses)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = "-", bare[1:]
        source = quoted if quoted is not None else bare
        words = tuple(w.casefold() for w in _WORD.findall(source or ""))[:MAX_WORDS_PER_TERM]
        if not words:
            continue
        if sum(len(c) for c in clauses) + len(excluded) >= MAX_TERMS:
            break
        term = Term(words, phrase=quoted is not None or len(words) > 1)
        if negated:
            excluded.append(term)
            join_next = False
        elif join_next:
            clauses[-1].append(term)
            join_next = False
        else:
            clauses.append([term])
    return SearchQuery(tuple(tuple(c) for c in clauses), tuple(excluded))


def _fts5_term(term: Term) -> str:
    quoted = '"' + " ".join(term.words) + '"'
    return quoted if term.phrase else quoted + "*"


def fts5_expression(query: SearchQuery) -> str:
    def alternatives(terms: Iterable[Term]) -> str:
        return "(" + " OR ".join(_fts5_term(t) for t in terms) + ")"
    expression = " AND ".join(alternatives(clause) for clause in query.clauses)
    if query.excluded:
        expression = f"({expression}) NOT {alternatives(query.excluded)}"
    return expression


def _ts_term(term: Term) -> str:
    if term.phrase:
        return "(" + " <-> ".join(f"'{w}'" for w in term.words) + ")"
    return f"'{term.words[0]}':*"


def tsquery_expression(query: SearchQuery) -> str:
    parts = ["(" + " | ".join(_ts_term(t) for t in clause) + ")" for clause in query.clauses]
    parts += ["!" + _ts_term(t) for t in query.excluded]
    return " & ".join(parts)


# -- searching ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchCriteria:
    room_ids: tuple[str, ...]
    keys: tuple[str, ...] = ALL_KEYS
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    order: str = "rank"  # or "recent"


@dataclass(frozen=True)
class SearchHit:
    stream_ordering: int
    event_id: str
    room_id: str
    rank: float


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join('?' * len(values))})"


def _base(txn: Transaction, query: SearchQuery, criteria: SearchCriteria) -> tuple[str, str, list, list[str]]:
    """(FROM clause, rank expression, arguments so far, WHERE conditions)."""
    if txn.dialect == "sqlite":
        source = ("(SELECT rowid AS so, -bm25(event_search_fts) AS rank FROM event_search_fts"
                  " WHERE event_search_fts MATCH ?) m JOIN event_search s ON s.stream_ordering = m.so")
        rank, args, where = "m.rank", [fts5_expression(query)], []
    else:
        source = f"event_search s CROSS JOIN to_tsquery({_TS_CONFIG}, ?) AS q"
        rank, args, where = "ts_rank_cd(s.vector, q)::float8", [tsquery_expression(query)], ["s.vector @@ q"]
    where.append(_in("s.room_id", criteria.room_ids))
    args += criteria.room_ids
    where.append(_in("s.key", criteria.keys))
    args += criteria.keys
    if criteria.senders is not None:
        where.append(_in("s.sender", criteria.senders))
        args += criteria.senders
    if criteria.not_senders:
        where.append("NOT " + _in("s.sender", criteria.not_senders))
        args += criteria.not_senders
    where.append("NOT EXISTS (SELECT 1 FROM event_redactions r WHERE r.redacts = s.event_id)")
    return source, rank, args, where


def search_txn(txn: Transaction, query: SearchQuery, criteria: SearchCriteria,
               after: tuple[float, int] | None, limit: int) -> list[SearchHit]:
    """Matching rows in the requested order, strictly after ``after`` (rank, stream)."""
    if query.empty or not criteria.room_ids or not criteria.keys or criteria.senders == ():
        return []
    source, rank, args, where = _base(txn, query, criteria)
    if criteria.order == "recent":
        if after is not None:
            where.append("s.stream_ordering < ?")
            args.append(after[1])
        order = "s.stream_ordering DESC"
    else:
        if after is not None:
            where.append(f"({rank} < ? OR ({rank} = ? AND s.stream_ordering < ?))")
            args += [after[0], after[0], after[1]]
        order = f"{rank} DESC, s.stream_ordering DESC"
    rows = txn.select_all(f"SELECT s.stream_ordering, s.event_id, s.room_id, {rank} FROM {source}"
                          f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?", [*args, limit])
    return [SearchHit(r[0], r[1], r[2], float(r[3])) for r in rows]


def count_txn(txn: Transaction, query: SearchQuery, criteria: SearchCriteria) -> int:
    if query.empty or not criteria.room_ids or not criteria.keys or criteria.senders == ():
        return 0
    source, _, args, where = _base(txn, query, criteria)
    return txn.select_one(f"SELECT COUNT(*) FROM {source} WHERE {' AND '.join(where)}", args)[0]


# -- filling the index ---------------------------------------------------------------------

def read_position_txn(txn: Transaction, name: str = POSITION_NAME) -> int:
    row = txn.select_one("SELECT stream_ordering FROM discovery_positions WHERE name = ?", (name,))
    return row[0] if row else 0


def _write_position_txn(txn: Transaction, position: int, name: str = POSITION_NAME) -> None:
    txn.execute("INSERT INTO discovery_positions (name, stream_ordering) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET stream_ordering = excluded.stream_ordering", (name, position))


def _index_event_txn(txn: Transaction, stream: int, event_id: str, room_id: str, event_type: str, sender: str,
                     ts: int, content: dict[str, Any]) -> None:
    text = searchable_text(event_type, content)
    if text is None:
        return
    columns = "stream_ordering, event_id, room_id, sender, type, key, origin_server_ts"
    values = (stream, event_id, room_id, sender, event_type, SEARCH_KEYS[event_type], ts)
    # Not when redacted before we got to it.
    unredacted = "WHERE NOT EXISTS (SELECT 1 FROM event_redactions WHERE redacts = ?)"
    if txn.dialect == "sqlite":
        txn.execute(f"INSERT INTO event_search ({columns}) SELECT ?, ?, ?, ?, ?, ?, ? {unredacted}"
                    " ON CONFLICT DO NOTHING", (*values, event_id))
        if txn.rowcount == 1:
            txn.execute("INSERT INTO event_search_fts (rowid, value) VALUES (?, ?)", (stream, text))
    else:
        txn.execute(f"INSERT INTO event_search ({columns}, vector) SELECT ?, ?, ?, ?, ?, ?, ?,"
                    f" to_tsvector({_TS_CONFIG}, ?) {unredacted} ON CONFLICT DO NOTHING",
                    (*values, text, event_id))


def unindex_event_txn(txn: Transaction, event_id: str) -> None:
    row = txn.select_one("SELECT stream_ordering FROM event_search WHERE event_id = ?", (event_id,))
    if row is None:
        return
    txn.execute("DELETE FROM event_search WHERE stream_ordering = ?", (row[0],))
    if txn.dialect == "sqlite":
        txn.execute("DELETE FROM event_search_fts WHERE rowid = ?", (row[0],))


def follow_events_txn(txn: Transaction, server_name: str, position: int, batch_size: int) -> tuple[int, bool]:
    """Process the followed events above ``position`` (at most ``batch_size``): index
    searchable text, drop redacted events, update the user directory. Returns the new
    position and whether it reached the end of the stream."""
    if txn.dialect == "postgres":
        # Everything written here can be derived again from the events: a commit lost in a
        # crash only moves the position back, and the next start re-reads those events.
        # So the commit need not wait for its WAL flush (it stays atomic and ordered).
        txn.execute("SET LOCAL synchronous_commit TO OFF")
    upto = txn.select_one("SELECT COALESCE(MAX(stream_ordering), 0) FROM events")[0]
    if upto <= position:
        return position, True
    rows = txn.select_all(
        "SELECT stream_ordering, event_id, room_id, type, state_key, sender, origin_server_ts, json FROM events"
        f" WHERE stream_ordering > ? AND stream_ordering <= ? AND {_in('type', FOLLOWED_TYPES)}"
        " AND rejected_reason IS NULL AND NOT soft_failed AND NOT outlier ORDER BY stream_ordering LIMIT ?",
        [position, upto, *FOLLOWED_TYPES, batch_size])
    for stream, event_id, room_id, event_type, state_key, sender, ts, raw in rows:
        pdu = json.loads(raw)
        content = pdu.get("content") if isinstance(pdu.get("content"), dict) else {}
        if event_type in SEARCH_KEYS:
            _index_event_txn(txn, stream, event_id, room_id, event_type, sender, ts, content)
        elif event_type == "m.room.redaction":
            target = content.get("redacts") if isinstance(content.get("redacts"), str) else pdu.get("redacts")
            if isinstance(target, str):
                unindex_event_txn(txn, target)
        apply_directory_event_txn(txn, server_name, room_id, event_type, state_key, content)
    done = len(rows) < batch_size
    new_position = upto if done else rows[-1][0]
    if rows or new_position - read_position_txn(txn) >= _POSITION_WRITE_GAP:
        _write_position_txn(txn, new_position)
    return new_position, done


class SearchStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def search(self, query: SearchQuery, criteria: SearchCriteria, after: tuple[float, int] | None,
                     limit: int) -> list[SearchHit]:
        return await self.db.run_interaction("search_events", search_txn, query, criteria, after, limit)

    async def count(self, query: SearchQuery, criteria: SearchCriteria) -> int:
        return await self.db.run_interaction("count_search", count_txn, query, criteria)

    async def position(self) -> int:
        return await self.db.run_interaction("discovery_position", read_position_txn)

    async def follow(self, server_name: str, position: int, batch_size: int) -> tuple[int, bool]:
        return await self.db.run_interaction("follow_events", follow_events_txn, server_name, position,
                                             batch_size)
