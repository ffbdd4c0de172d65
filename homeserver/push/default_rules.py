"""The specification's predefined ("server-default") push rules, as data.

Copied from the client-server API, "Push Notifications" > "Predefined Rules" (v1.17 and
later: the legacy rules that looked for mentions in ``content.body`` are gone). Values
that depend on the user are written as the placeholders below and filled in by
``default_rules_for``; the data itself is never mutated.

The order within each kind is the specification's, and it is the evaluation order.
``.m.rule.master`` is special: it is evaluated before every other rule, the user's own
override rules included (``rules.py`` puts it first).
"""

from __future__ import annotations

import copy
from typing import Any

USER_ID = "[the user's Matrix ID]"
USER_LOCALPART = "[the local part of the user's Matrix ID]"

MASTER_RULE_ID = ".m.rule.master"

_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list, actions: list, enabled: bool = True) -> dict[str, Any]:
    return {"rule_id": rule_id, "default": True, "enabled": enabled, "conditions": conditions,
            "actions": actions}


OVERRIDE: tuple[dict[str, Any], ...] = (
    _rule(MASTER_RULE_ID, [], [], enabled=False),
    _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
    _rule(".m.rule.invite_for_me",
          [_match("type", "m.room.member"), _match("content.membership", "invite"), _match("state_key", USER_ID)],
          ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
    _rule(".m.rule.is_user_mention",
          [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": USER_ID}],
          ["notify", _SOUND_DEFAULT, _HIGHLIGHT]),
    _rule(".m.rule.is_room_mention",
          [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
           {"kind": "sender_notification_permission", "key": "room"}],
          ["notify", _HIGHLIGHT]),
    _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")],
          ["notify", _HIGHLIGHT]),
    _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
    _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
    _rule(".m.rule.suppress_edits",
          [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}], []),
)

CONTENT: tuple[dict[str, Any], ...] = ()

UNDERRIDE: tuple[dict[str, Any], ...] = (
    _rule(".m.rule.call", [_match("type", "m.call.invite")],
          ["notify", {"set_tweak": "sound", "value": "ring"}]),
    _rule(".m.rule.encrypted_room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.encrypted")],
          ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.room_one_to_one",
          [{"kind": "room_member_count", "is": "2"}, _match("type", "m.room.message")],
          ["notify", _SOUND_DEFAULT]),
    _rule(".m.rule.message", [_match("type", "m.room.message")], ["notify"]),
    _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], ["notify"]),
)

# The rules removed in v1.17, for servers that still want body-based mentions (older
# clients that send no ``m.mentions``). Off unless asked for; each entry says where it
# went: (kind, the rule it followed). As before v1.17, they do not apply to an event
# whose content has ``m.mentions`` (the evaluator knows their IDs).
LEGACY_MENTION_RULES: tuple[tuple[str, str | None, dict[str, Any]], ...] = (
    ("override", ".m.rule.is_user_mention",
     _rule(".m.rule.contains_display_name", [{"kind": "contains_display_name"}],
           ["notify", _SOUND_DEFAULT, _HIGHLIGHT])),
    ("override", ".m.rule.is_room_mention",
     _rule(".m.rule.roomnotif",
           [_match("content.body", "@room"), {"kind": "sender_notification_permission", "key": "room"}],
           ["notify", _HIGHLIGHT])),
    ("content", None,
     {"rule_id": ".m.rule.contains_user_name", "default": True, "enabled": True, "pattern": USER_LOCALPART,
      "actions": ["notify", _SOUND_DEFAULT, _HIGHLIGHT]}),
)
LEGACY_MENTION_RULE_IDS = frozenset(rule["rule_id"] for _, _, rule in LEGACY_MENTION_RULES)

DEFAULTS: dict[str, tuple[dict[str, Any], ...]] = {
    "override": OVERRIDE, "content": CONTENT, "room": (), "sender": (), "underride": UNDERRIDE,
}


def _fill(value: Any, user_id: str, localpart: str) -> Any:
    if value == USER_ID:
        return user_id
    if value == USER_LOCALPART:
        return localpart
    if isinstance(value, dict):
        return {k: _fill(v, user_id, localpart) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, user_id, localpart) for v in value]
    return value


def localpart_of(user_id: str) -> str:
    return user_id[1:].split(":", 1)[0]


def default_rules_for(user_id: str, legacy_mention_rules: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every kind's predefined rules for this user, in order: fresh dicts the caller may keep."""
    localpart = localpart_of(user_id)
    rules = {kind: [_fill(copy.deepcopy(rule), user_id, localpart) for rule in kind_rules]
             for kind, kind_rules in DEFAULTS.items()}
    if legacy_mention_rules:
        for kind, after, rule in LEGACY_MENTION_RULES:
            ids = [r["rule_id"] for r in rules[kind]]
            position = ids.index(after) + 1 if after in ids else len(ids)
            rules[kind].insert(position, _fill(copy.deepcopy(rule), user_id, localpart))
    return rules


def is_default_rule_id(rule_id: str) -> bool:
    """Rule IDs starting with a dot are reserved for server-default rules."""
    return rule_id.startswith(".")
