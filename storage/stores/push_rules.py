"""Push rules and pushers: what users stored (schema/0005_push_rules.sql).

Only the user's side is here: their own rules, their settings for the predefined rules,
and their pushers. Merging with the predefined rules is ``homeserver.push.rules``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage.database import DatabasePool, Transaction


class RelativeRuleNotFound(Exception):
    """``before``/``after`` names no rule of the user's of that kind."""

    def __init__(self, rule_id: str):
        super().__init__(f"before/after rule not found: {rule_id}")
        self.rule_id = rule_id


@dataclass(frozen=True)
class StoredRule:
    kind: str
    rule_id: str
    priority: int
    conditions: list | None
    pattern: str | None
    actions: list
    enabled: bool


@dataclass(frozen=True)
class DefaultRuleSetting:
    kind: str
    rule_id: str
    enabled: bool | None
    actions: list | None


@dataclass(frozen=True)
class PusherRecord:
    user_id: str
    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict
    device_id: str | None
    created_ts: int

    def to_json(self) -> dict[str, Any]:
        """As ``GET /pushers`` lists it."""
        body = {"pushkey": self.pushkey, "kind": self.kind, "app_id": self.app_id,
                "app_display_name": self.app_display_name, "device_display_name": self.device_display_name,
                "lang": self.lang, "data": self.data}
        if self.profile_tag is not None:
            body["profile_tag"] = self.profile_tag
        return body


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def get_user_rules_txn(txn: Transaction, user_id: str) -> tuple[list[StoredRule], list[DefaultRuleSetting]]:
    """The user's own rules (each kind most important first) and predefined-rule settings."""
    own = [StoredRule(r[0], r[1], r[2], _loads(r[3]), r[4], _loads(r[5]), bool(r[6])) for r in txn.select_all(
        "SELECT kind, rule_id, priority, conditions, pattern, actions, enabled FROM push_rules_user_rules"
        " WHERE user_id = ? ORDER BY kind, priority DESC, rule_id", (user_id,))]
    settings = [DefaultRuleSetting(r[0], r[1], None if r[2] is None else bool(r[2]), _loads(r[3]))
                for r in txn.select_all(
                    "SELECT kind, rule_id, enabled, actions FROM push_rules_default_settings WHERE user_id = ?",
                    (user_id,))]
    return own, settings


def upsert_rule_txn(txn: Transaction, user_id: str, kind: str, rule_id: str, conditions: list | None,
                    pattern: str | None, actions: list, before: str | None, after: str | None) -> bool:
    """Create or update a rule of the user's; True when created.

    Placement follows ``PUT /pushrules/global/{kind}/{ruleId}``: ``before`` X makes it the
    next more important rule than X (``before`` wins over ``after``), ``after`` X the
    next less important; with neither a new rule becomes the most important of its kind
    and an existing one keeps its place. A new rule is enabled; an updated one keeps its
    enabled flag. Raises ``RelativeRuleNotFound`` (writing nothing).
    """
    rows = txn.select_all(
        "SELECT rule_id, priority FROM push_rules_user_rules WHERE user_id = ? AND kind = ?"
        " ORDER BY priority DESC, rule_id", (user_id, kind))
    priorities = {r[0]: r[1] for r in rows}
    order = [r[0] for r in rows]
    exists = rule_id in priorities
    if before is not None or after is not None or not exists:
        if exists:
            order.remove(rule_id)
        anchor = before if before is not None else after
        if anchor is None:
            position = 0
        elif anchor not in order:
            raise RelativeRuleNotFound(anchor)
        else:
            position = order.index(anchor) + (0 if before is not None else 1)
        order.insert(position, rule_id)
    conditions_json = _dumps(conditions) if conditions is not None else None
    if exists:
        txn.execute("UPDATE push_rules_user_rules SET conditions = ?, pattern = ?, actions = ?"
                    " WHERE user_id = ? AND kind = ? AND rule_id = ?",
                    (conditions_json, pattern, _dumps(actions), user_id, kind, rule_id))
    else:
        txn.execute("INSERT INTO push_rules_user_rules (user_id, kind, rule_id, priority, conditions, pattern,"
                    " actions, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, kind, rule_id, 0, conditions_json, pattern, _dumps(actions), True))
        priorities[rule_id] = None
    top = len(order) - 1
    changed = [(top - position, user_id, kind, rid) for position, rid in enumerate(order)
               if priorities[rid] != top - position]
    if changed:
        txn.execute_many("UPDATE push_rules_user_rules SET priority = ? WHERE user_id = ? AND kind = ?"
                         " AND rule_id = ?", changed)
    return not exists


class PushRuleStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    # --- rules -----------------------------------------------------------------------

    async def get_user_rules(self, user_id: str) -> tuple[list[StoredRule], list[DefaultRuleSetting]]:
        return await self.db.run_interaction("get_push_rules", get_user_rules_txn, user_id)

    async def upsert_rule(self, user_id: str, kind: str, rule_id: str, conditions: list | None,
                          pattern: str | None, actions: list, before: str | None = None,
                          after: str | None = None) -> bool:
        return await self.db.run_interaction("upsert_push_rule", upsert_rule_txn, user_id, kind, rule_id,
                                             conditions, pattern, actions, before, after)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> bool:
        def txn_func(txn: Transaction) -> bool:
            txn.execute("DELETE FROM push_rules_user_rules WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (user_id, kind, rule_id))
            return txn.rowcount > 0
        return await self.db.run_interaction("delete_push_rule", txn_func)

    async def set_rule_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> bool:
        """On one of the user's own rules; False when there is no such rule."""
        def txn_func(txn: Transaction) -> bool:
            txn.execute("UPDATE push_rules_user_rules SET enabled = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (enabled, user_id, kind, rule_id))
            return txn.rowcount > 0
        return await self.db.run_interaction("set_push_rule_enabled", txn_func)

    async def set_rule_actions(self, user_id: str, kind: str, rule_id: str, actions: list) -> bool:
        """On one of the user's own rules; False when there is no such rule."""
        def txn_func(txn: Transaction) -> bool:
            txn.execute("UPDATE push_rules_user_rules SET actions = ? WHERE user_id = ? AND kind = ? AND rule_id = ?",
                        (_dumps(actions), user_id, kind, rule_id))
            return txn.rowcount > 0
        return await self.db.run_interaction("set_push_rule_actions", txn_func)

    async def set_default_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("INSERT INTO push_rules_default_settings (user_id, kind, rule_id, enabled, actions)"
                        " VALUES (?, ?, ?, ?, NULL) ON CONFLICT (user_id, kind, rule_id)"
                        " DO UPDATE SET enabled = excluded.enabled", (user_id, kind, rule_id, enabled))
        await self.db.run_interaction("set_default_push_rule_enabled", txn_func)

    async def set_default_actions(self, user_id: str, kind: str, rule_id: str, actions: list) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("INSERT INTO push_rules_default_settings (user_id, kind, rule_id, enabled, actions)"
                        " VALUES (?, ?, ?, NULL, ?) ON CONFLICT (user_id, kind, rule_id)"
                        " DO UPDATE SET actions = excluded.actions", (user_id, kind, rule_id, _dumps(actions)))
        await self.db.run_interaction("set_default_push_rule_actions", txn_func)

    # --- pushers ---------------------------------------------------------------------

    async def get_pushers(self, user_id: str) -> list[PusherRecord]:
        rows = await self.db.run_interaction("get_pushers", lambda txn: txn.select_all(
            "SELECT user_id, app_id, pushkey, kind, app_display_name, device_display_name, profile_tag, lang,"
            " data, device_id, created_ts FROM push_rules_pushers WHERE user_id = ? ORDER BY created_ts, app_id,"
            " pushkey", (user_id,)))
        return [PusherRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]), r[9], r[10])
                for r in rows]

    async def set_pusher(self, pusher: PusherRecord, append: bool) -> None:
        """Create or replace the user's pusher for (app_id, pushkey). Without ``append``
        other users' pushers with the same app_id and pushkey are removed."""
        def txn_func(txn: Transaction) -> None:
            if not append:
                txn.execute("DELETE FROM push_rules_pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?",
                            (pusher.app_id, pusher.pushkey, pusher.user_id))
            txn.execute(
                "INSERT INTO push_rules_pushers (user_id, app_id, pushkey, kind, app_display_name,"
                " device_display_name, profile_tag, lang, data, device_id, created_ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET"
                " kind = excluded.kind, app_display_name = excluded.app_display_name,"
                " device_display_name = excluded.device_display_name, profile_tag = excluded.profile_tag,"
                " lang = excluded.lang, data = excluded.data, device_id = excluded.device_id",
                (pusher.user_id, pusher.app_id, pusher.pushkey, pusher.kind, pusher.app_display_name,
                 pusher.device_display_name, pusher.profile_tag, pusher.lang, _dumps(pusher.data),
                 pusher.device_id, pusher.created_ts))
        await self.db.run_interaction("set_pusher", txn_func)

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> bool:
        def txn_func(txn: Transaction) -> bool:
            txn.execute("DELETE FROM push_rules_pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?",
                        (user_id, app_id, pushkey))
            return txn.rowcount > 0
        return await self.db.run_interaction("delete_pusher", txn_func)

    async def delete_pushers_for_device(self, user_id: str, device_id: str) -> int:
        """For logout and device deletion: the pushers that device set."""
        def txn_func(txn: Transaction) -> int:
            txn.execute("DELETE FROM push_rules_pushers WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            return txn.rowcount
        return await self.db.run_interaction("delete_device_pushers", txn_func)
