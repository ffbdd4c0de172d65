"""Queries behind friends, blocks and the username search of ``/api/v1``.

Relationships and blocks themselves live in account data (``io.drocsid.relationships``
and ``m.ignored_user_list``), so there is no table of our own: this store only answers
the questions account data cannot answer per user, in one query each.
"""

from __future__ import annotations

import json

from storage.database import DatabasePool, Transaction


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_local_users_txn(txn: Transaction, server_name: str, term: str, limit: int,
                           excluded: list[str]) -> list[tuple[str, str | None, str | None]]:
    """Active local accounts of people (not guests, not application-service users such as
    bridged puppets) whose localpart or display name contains ``term`` (case-insensitive):
    exact localpart first, then localpart prefixes, then display-name prefixes, then the rest."""
    # Every account here is local, so the localpart is the ID without "@" and ":server".
    localpart = "LOWER(SUBSTR(u.user_id, 2, LENGTH(u.user_id) - %d))" % (len(server_name) + 2)
    name = "LOWER(COALESCE(p.displayname, ''))"
    like = "LIKE ? ESCAPE '\\'"
    term = term.casefold()
    escaped = _like_escape(term)
    exclude = " AND u.user_id NOT IN (%s)" % ", ".join("?" for _ in excluded) if excluded else ""
    sql = (
        f"SELECT u.user_id, p.displayname, p.avatar_url, CASE WHEN {localpart} = ? THEN 0"
        f" WHEN {localpart} {like} THEN 1 WHEN {name} {like} THEN 2 ELSE 3 END AS rank"
        " FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id"
        f" WHERE NOT u.deactivated AND NOT u.is_guest AND u.appservice_id IS NULL AND ({localpart} {like} OR {name} {like})"
        + exclude + " ORDER BY rank, u.user_id LIMIT ?")
    args = [term, escaped + "%", escaped + "%", f"%{escaped}%", f"%{escaped}%", *excluded, limit]
    rows = txn.select_all(sql, args)
    return [(r[0], r[1], r[2]) for r in rows]


def users_ignoring_txn(txn: Transaction, user_id: str) -> set[str]:
    """Users whose ``m.ignored_user_list`` names ``user_id``."""
    pattern = "%" + _like_escape(json.dumps(user_id)) + "%"
    rows = txn.select_all(
        "SELECT user_id, content FROM account_data WHERE room_id = '' AND type = 'm.ignored_user_list'"
        " AND content LIKE ? ESCAPE '\\'", (pattern,))
    found = set()
    for owner, raw in rows:
        ignored = json.loads(raw).get("ignored_users")
        if isinstance(ignored, dict) and user_id in ignored:
            found.add(owner)
    return found


class RelationshipStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def search_local_users(self, server_name: str, term: str, limit: int,
                                 excluded: set[str]) -> list[tuple[str, str | None, str | None]]:
        """(user_id, display name, avatar URL) of matching local users, ``excluded`` left out."""
        return await self.db.run_interaction("search_local_users", search_local_users_txn, server_name, term,
                                             limit, sorted(excluded))

    async def users_ignoring(self, user_id: str) -> set[str]:
        return await self.db.run_interaction("users_ignoring", users_ignoring_txn, user_id)
