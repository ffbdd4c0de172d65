"""Push rules and pushers over the client-server API (``/pushrules``, ``/pushers``).

The rules themselves (defaults, merging, validation, evaluation) are ``homeserver.push``;
this module builds the service, keeps it as ``hs.push_rules``, and maps HTTP onto it.
"""

from __future__ import annotations

from homeserver.http.request import field, parse_json_object, query_str
from homeserver.http.router import CLIENT_PREFIX, Router
from homeserver.push.rules import PushRules, check_kind
from storage.stores.push_rules import PushRuleStore

_RULE = f"{CLIENT_PREFIX}/pushrules/global/{{kind}}/{{rule_id}}"


def register_routes(router: Router, hs) -> None:
    push_rules = PushRules(PushRuleStore(hs.db), hs.clock)
    hs.push_rules = push_rules

    async def get_all(request):
        requester = await hs.auth.authenticate(request)
        return 200, await push_rules.ruleset_json(requester.user_id)

    async def get_global(request):
        requester = await hs.auth.authenticate(request)
        return 200, (await push_rules.rules_for_user(requester.user_id)).to_json()

    async def get_kind(request, kind):
        requester = await hs.auth.authenticate(request)
        check_kind(kind)
        ruleset = await push_rules.rules_for_user(requester.user_id)
        return 200, [rule.to_json() for rule in ruleset.rules(kind)]

    async def get_rule(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        rule = await push_rules.get_rule(requester.user_id, kind, rule_id)
        return 200, rule.to_json()

    async def put_rule(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        check_kind(kind)
        body = parse_json_object(request)
        await push_rules.put_rule(requester.user_id, kind, rule_id, body,
                                  before=query_str(request, "before"), after=query_str(request, "after"))
        return 200, {}

    async def delete_rule(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        await push_rules.delete_rule(requester.user_id, kind, rule_id)
        return 200, {}

    async def get_enabled(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        rule = await push_rules.get_rule(requester.user_id, kind, rule_id)
        return 200, {"enabled": rule.enabled}

    async def put_enabled(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        check_kind(kind)
        enabled = field(parse_json_object(request), "enabled", bool)
        await push_rules.set_enabled(requester.user_id, kind, rule_id, enabled)
        return 200, {}

    async def get_actions(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        rule = await push_rules.get_rule(requester.user_id, kind, rule_id)
        return 200, {"actions": rule.to_json()["actions"]}

    async def put_actions(request, kind, rule_id):
        requester = await hs.auth.authenticate(request)
        check_kind(kind)
        actions = field(parse_json_object(request), "actions", list)
        await push_rules.set_actions(requester.user_id, kind, rule_id, actions)
        return 200, {}

    async def get_pushers(request):
        requester = await hs.auth.authenticate(request)
        pushers = await push_rules.get_pushers(requester.user_id)
        return 200, {"pushers": [p.to_json() for p in pushers]}

    async def set_pusher(request):
        requester = await hs.auth.authenticate(request)
        await push_rules.set_pusher(requester.user_id, requester.device_id, parse_json_object(request))
        return 200, {}

    router.add("GET", f"{CLIENT_PREFIX}/pushrules/", get_all)
    router.add("GET", f"{CLIENT_PREFIX}/pushrules/global/", get_global)
    router.add("GET", f"{CLIENT_PREFIX}/pushrules/global/{{kind}}/", get_kind)
    router.add("GET", _RULE, get_rule)
    router.add("PUT", _RULE, put_rule)
    router.add("DELETE", _RULE, delete_rule)
    router.add("GET", f"{_RULE}/enabled", get_enabled)
    router.add("PUT", f"{_RULE}/enabled", put_enabled)
    router.add("GET", f"{_RULE}/actions", get_actions)
    router.add("PUT", f"{_RULE}/actions", put_actions)
    router.add("GET", f"{CLIENT_PREFIX}/pushers", get_pushers)
    router.add("POST", f"{CLIENT_PREFIX}/pushers/set", set_pusher)
