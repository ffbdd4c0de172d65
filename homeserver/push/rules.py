"""A user's push rule set: the predefined rules merged with what the user stored.

Order (the specification's): kinds override, content, room, sender, underride; within a
kind the user's own rules (most important first) before the predefined ones, except
``.m.rule.master``, which comes before everything. The user's settings for predefined
rules (enabled flag, actions) are applied to them in place; predefined rules cannot be
added, moved or deleted.

``merge_rules`` and the validators are pure. ``PushRules`` is the service the servlet and
the rest of the server use (``hs.push_rules``): it reads and writes through the store,
caches each user's merged set and compiled evaluator, and tells listeners of changes
(e.g. to send ``m.push_rules`` account data down /sync).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from twisted.logger import Logger

from homeserver.http.errors import MatrixError, invalid_param, missing_param, not_found
from homeserver.locks import KeyedLock
from homeserver.push.default_rules import MASTER_RULE_ID, default_rules_for, is_default_rule_id
from homeserver.push.evaluator import HISTORICAL_ACTIONS, KINDS, PushRuleEvaluator, parse_member_count
from storage.cache import LruCache
from storage.stores.push_rules import (DefaultRuleSetting, PushRuleStore, PusherRecord, RelativeRuleNotFound,
                                       StoredRule)

log = Logger(namespace="drocsid.push")

_CONDITION_KINDS = ("override", "underride")
_MAX_SAFE_INT = 2 ** 53 - 1


@dataclass(frozen=True)
class PushRule:
    kind: str
    rule_id: str
    default: bool
    enabled: bool
    actions: list
    conditions: list | None = None
    pattern: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As the client-server API shows a rule (``conditions`` only for override and
        underride, ``pattern`` only for content)."""
        body: dict[str, Any] = {"rule_id": self.rule_id, "default": self.default, "enabled": self.enabled,
                                "actions": copy.deepcopy(self.actions)}
        if self.kind in _CONDITION_KINDS:
            body["conditions"] = copy.deepcopy(self.conditions or [])
        elif self.kind == "content" and self.pattern is not None:
            body["pattern"] = self.pattern
        return body


class Ruleset:
    """One user's rules, by kind, each list in evaluation order."""

    def __init__(self, by_kind: Mapping[str, list[PushRule]]):
        self._by_kind = {kind: list(by_kind.get(kind, ())) for kind in KINDS}
        self._evaluator: PushRuleEvaluator | None = None

    def rules(self, kind: str) -> list[PushRule]:
        return list(self._by_kind.get(kind, ()))

    def find(self, kind: str, rule_id: str) -> PushRule | None:
        for rule in self._by_kind.get(kind, ()):
            if rule.rule_id == rule_id:
                return rule
        return None

    def in_evaluation_order(self) -> list[PushRule]:
        return [rule for kind in KINDS for rule in self._by_kind[kind]]

    @property
    def evaluator(self) -> PushRuleEvaluator:
        """The compiled rules (compiled on first use, then kept with the set)."""
        if self._evaluator is None:
            self._evaluator = PushRuleEvaluator(self.in_evaluation_order())
        return self._evaluator

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The ``global`` ruleset object of ``GET /pushrules/``."""
        return {kind: [rule.to_json() for rule in self._by_kind[kind]] for kind in KINDS}


def merge_rules(user_id: str, own: Iterable[StoredRule], settings: Iterable[DefaultRuleSetting],
                legacy_mention_rules: bool = False) -> Ruleset:
    """The user's rule set from their stored rules and settings (pure)."""
    changes = {(s.kind, s.rule_id): s for s in settings}
    own_by_kind: dict[str, list[PushRule]] = {kind: [] for kind in KINDS}
    for stored in sorted(own, key=lambda r: (-r.priority, r.rule_id)):
        if stored.kind not in own_by_kind:
            continue
        own_by_kind[stored.kind].append(PushRule(
            stored.kind, stored.rule_id, False, stored.enabled, list(stored.actions or []),
            conditions=list(stored.conditions or []) if stored.kind in _CONDITION_KINDS else None,
            pattern=stored.pattern if stored.kind == "content" else None))

    by_kind: dict[str, list[PushRule]] = {}
    for kind, defaults in default_rules_for(user_id, legacy_mention_rules).items():
        predefined = []
        for rule in defaults:
            change = changes.get((kind, rule["rule_id"]))
            enabled = rule["enabled"] if change is None or change.enabled is None else change.enabled
            actions = rule["actions"] if change is None or change.actions is None else change.actions
            predefined.append(PushRule(kind, rule["rule_id"], True, enabled, actions,
                                       conditions=rule.get("conditions") if kind in _CONDITION_KINDS else None,
                                       pattern=rule.get("pattern")))
        master = [r for r in predefined if r.rule_id == MASTER_RULE_ID]
        rest = [r for r in predefined if r.rule_id != MASTER_RULE_ID]
        by_kind[kind] = master + own_by_kind[kind] + rest
    return Ruleset(by_kind)


# --- Validation --------------------------------------------------------------------------

class InvalidRule(ValueError):
    """A rule body the API refuses; ``errcode`` M_INVALID_PARAM or M_MISSING_PARAM."""

    def __init__(self, message: str, errcode: str = "M_INVALID_PARAM"):
        super().__init__(message)
        self.errcode = errcode


def validate_actions(actions: Any) -> list:
    """The actions to store: checked, and without the historical ``dont_notify``/``coalesce``."""
    if not isinstance(actions, list):
        raise InvalidRule("'actions' must be an array")
    kept = []
    for action in actions:
        if isinstance(action, str):
            if action in HISTORICAL_ACTIONS:
                continue
            if action != "notify":
                raise InvalidRule(f"Unknown action: {action!r}")
        elif isinstance(action, dict):
            tweak = action.get("set_tweak")
            if not isinstance(tweak, str) or not tweak:
                raise InvalidRule("An action object needs a 'set_tweak' string")
            if tweak == "highlight" and "value" in action and not isinstance(action["value"], bool):
                raise InvalidRule("The 'highlight' tweak's value must be a boolean")
        else:
            raise InvalidRule("Each action must be a string or an object")
        kept.append(action)
    return kept


def _simple_value(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    return type(value) is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def validate_conditions(conditions: Any) -> list:
    """Conditions of an override/underride rule. Known kinds must be well formed; unknown
    kinds are kept (the specification: they never match)."""
    if not isinstance(conditions, list):
        raise InvalidRule("'conditions' must be an array")
    for condition in conditions:
        if not isinstance(condition, dict):
            raise InvalidRule("Each condition must be an object")
        kind = condition.get("kind")
        if not isinstance(kind, str):
            raise InvalidRule("Each condition needs a 'kind' string")
        key = condition.get("key")
        if kind in ("event_match", "event_property_is", "event_property_contains",
                    "sender_notification_permission") and not isinstance(key, str):
            raise InvalidRule(f"A {kind} condition needs a 'key' string")
        if kind == "event_match" and not isinstance(condition.get("pattern"), str):
            raise InvalidRule("An event_match condition needs a 'pattern' string")
        if kind in ("event_property_is", "event_property_contains"):
            if "value" not in condition or not _simple_value(condition["value"]):
                raise InvalidRule(f"A {kind} condition needs a 'value': a string, integer, boolean or null")
        if kind == "room_member_count" and parse_member_count(condition.get("is")) is None:
            raise InvalidRule("A room_member_count condition needs 'is': a number, optionally after"
                              " ==, <, >, <= or >=")
    return conditions


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise invalid_param(f"Unknown push rule kind: {kind!r}")


def _as_matrix_error(error: InvalidRule) -> MatrixError:
    return MatrixError(400, error.errcode, str(error))


# --- Pushers -------------------------------------------------------------------------------

PUSHER_KINDS = ("http",)
PUSH_GATEWAY_PATH = "/_matrix/push/v1/notify"


def validate_pusher(body: Mapping[str, Any]) -> None:
    """The fields of ``POST /pushers/set`` when ``kind`` is not null."""
    missing = [name for name in ("app_display_name", "device_display_name", "lang", "data") if name not in body]
    if missing:
        raise MatrixError(400, "M_MISSING_PARAM", f"Missing parameters: {', '.join(missing)}")
    for name in ("app_display_name", "device_display_name", "lang"):
        if not isinstance(body[name], str):
            raise invalid_param(f"'{name}' must be a string")
    if "profile_tag" in body and body["profile_tag"] is not None and not isinstance(body["profile_tag"], str):
        raise invalid_param("'profile_tag' must be a string")
    if not isinstance(body["data"], dict):
        raise invalid_param("'data' must be an object")
    kind = body["kind"]
    if kind not in PUSHER_KINDS:
        raise invalid_param(f"Unsupported pusher kind: {kind!r}")
    url = body["data"].get("url")
    if url is None:
        raise MatrixError(400, "M_MISSING_PARAM", "An http pusher needs 'data.url'")
    if not isinstance(url, str):
        raise invalid_param("'data.url' must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_param("'data.url' must be an http(s) URL")
    if parts.path != PUSH_GATEWAY_PATH:
        raise invalid_param(f"'data.url' must have the path {PUSH_GATEWAY_PATH}")
    if "format" in body["data"] and not isinstance(body["data"]["format"], str):
        raise invalid_param("'data.format' must be a string")


# --- The service ----------------------------------------------------------------------------

class PushRules:
    """Users' push rules and pushers (``hs.push_rules``)."""

    def __init__(self, store: PushRuleStore, clock, legacy_mention_rules: bool = False, cache_size: int = 10_000):
        self.store = store
        self.clock = clock
        self.legacy_mention_rules = legacy_mention_rules
        self._cache: LruCache[str, Ruleset] = LruCache(cache_size)
        self._generation: dict[str, int] = {}
        self._locks = KeyedLock()
        self._listeners: list[Callable[[str], None]] = []

    # --- reading --------------------------------------------------------------------

    async def rules_for_user(self, user_id: str) -> Ruleset:
        """The user's merged rule set (cached until the user changes it)."""
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        generation = self._generation.get(user_id, 0)
        own, settings = await self.store.get_user_rules(user_id)
        ruleset = merge_rules(user_id, own, settings, self.legacy_mention_rules)
        if self._generation.get(user_id, 0) == generation:  # no write meanwhile
            self._cache.set(user_id, ruleset)
        return ruleset

    async def evaluator_for_user(self, user_id: str) -> PushRuleEvaluator:
        """The user's rules compiled, for ``evaluate(event, PushContext(...))``."""
        return (await self.rules_for_user(user_id)).evaluator

    async def ruleset_json(self, user_id: str) -> dict[str, Any]:
        """``{"global": {...}}``: the body of ``GET /pushrules/`` and of ``m.push_rules``."""
        return {"global": (await self.rules_for_user(user_id)).to_json()}

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> PushRule:
        check_kind(kind)
        rule = (await self.rules_for_user(user_id)).find(kind, rule_id)
        if rule is None:
            raise not_found("The push rule was not found.")
        return rule

    # --- changes --------------------------------------------------------------------

    def add_change_listener(self, listener: Callable[[str], None]) -> None:
        """``listener(user_id)`` after each committed change to a user's rules."""
        self._listeners.append(listener)

    def _changed(self, user_id: str) -> None:
        self._generation[user_id] = self._generation.get(user_id, 0) + 1
        self._cache.pop(user_id)
        for listener in self._listeners:
            try:
                listener(user_id)
            except Exception:  # a listener's failure is not the writer's
                log.failure("push rule change listener failed")

    async def put_rule(self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any],
                       before: str | None = None, after: str | None = None) -> bool:
        """``PUT /pushrules/global/{kind}/{ruleId}``; True when the rule was created."""
        check_kind(kind)
        if is_default_rule_id(rule_id):
            raise invalid_param("Rule IDs starting with '.' are reserved for server-default rules")
        if "/" in rule_id or "\\" in rule_id:
            raise invalid_param("Rule IDs may not contain slashes or backslashes")
        for name, anchor in (("before", before), ("after", after)):
            if anchor is not None and is_default_rule_id(anchor):
                raise MatrixError(400, "M_UNKNOWN", f"A rule cannot be placed relative to the"
                                                    f" server-default rule {anchor} ({name})")
        try:
            if "actions" not in body:
                raise InvalidRule("Missing parameter: actions", "M_MISSING_PARAM")
            actions = validate_actions(body["actions"])
            conditions = pattern = None
            if kind in _CONDITION_KINDS:
                conditions = validate_conditions(body.get("conditions", []))
            elif kind == "content":
                if "pattern" not in body:
                    raise InvalidRule("Missing parameter: pattern", "M_MISSING_PARAM")
                pattern = body["pattern"]
                if not isinstance(pattern, str):
                    raise InvalidRule("'pattern' must be a string")
        except InvalidRule as error:
            raise _as_matrix_error(error) from None
        async with self._locks.hold(user_id):
            try:
                created = await self.store.upsert_rule(user_id, kind, rule_id, conditions, pattern, actions,
                                                       before, after)
            except RelativeRuleNotFound as error:
                raise MatrixError(400, "M_UNKNOWN", str(error)) from None
            self._changed(user_id)
        return created

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        """Only the user's own rules can be deleted: a predefined one answers 404, like
        any rule the user does not have."""
        check_kind(kind)
        async with self._locks.hold(user_id):
            if not await self.store.delete_rule(user_id, kind, rule_id):
                raise not_found("The push rule was not found.")
            self._changed(user_id)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        await self._set_attribute(user_id, kind, rule_id, "enabled", enabled)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: Any) -> None:
        try:
            actions = validate_actions(actions)
        except InvalidRule as error:
            raise _as_matrix_error(error) from None
        await self._set_attribute(user_id, kind, rule_id, "actions", actions)

    async def _set_attribute(self, user_id: str, kind: str, rule_id: str, name: str, value: Any) -> None:
        check_kind(kind)
        async with self._locks.hold(user_id):
            rule = await self.get_rule(user_id, kind, rule_id)
            if rule.default:
                setter = self.store.set_default_enabled if name == "enabled" else self.store.set_default_actions
                await setter(user_id, kind, rule_id, value)
            else:
                setter = self.store.set_rule_enabled if name == "enabled" else self.store.set_rule_actions
                if not await setter(user_id, kind, rule_id, value):
                    raise not_found("The push rule was not found.")
            self._changed(user_id)

    # --- pushers --------------------------------------------------------------------

    async def get_pushers(self, user_id: str) -> list[PusherRecord]:
        return await self.store.get_pushers(user_id)

    async def set_pusher(self, user_id: str, device_id: str | None, body: Mapping[str, Any]) -> None:
        """``POST /pushers/set``: create, replace, or (``kind`` null) delete a pusher."""
        for name in ("kind", "app_id", "pushkey"):
            if name not in body:
                raise missing_param(name)
        kind, app_id, pushkey = body["kind"], body["app_id"], body["pushkey"]
        if not isinstance(app_id, str) or not app_id:
            raise invalid_param("'app_id' must be a non-empty string")
        if not isinstance(pushkey, str) or not pushkey:
            raise invalid_param("'pushkey' must be a non-empty string")
        if len(app_id) > 64:
            raise invalid_param("'app_id' is longer than 64 characters")
        if len(pushkey.encode("utf-8")) > 512:
            raise invalid_param("'pushkey' is longer than 512 bytes")
        if kind is None:
            await self.store.delete_pusher(user_id, app_id, pushkey)
            return
        if not isinstance(kind, str):
            raise invalid_param("'kind' must be a string or null")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise invalid_param("'append' must be a boolean")
        validate_pusher(body)
        await self.store.set_pusher(PusherRecord(
            user_id, app_id, pushkey, kind, body["app_display_name"], body["device_display_name"],
            body.get("profile_tag"), body["lang"], dict(body["data"]), device_id, self.clock.time_ms()), append)
