"""Push rules: the specification's predefined rules (``default_rules``), merging them
with what each user stored (``rules``), and evaluating a rule list against an event
(``evaluator``, pure). The HTTP side is ``homeserver.client.push_rules``; the service
lives at ``hs.push_rules`` (``rules.PushRules``).

For notification counts::

    evaluator = await hs.push_rules.evaluator_for_user(user_id)
    result = evaluator.evaluate(event, PushContext(user_id, member_count=..., display_name=...,
                                                   sender_power_level=..., notification_levels=...))
    if result.notify: ...   # result.highlight, result.sound, result.tweaks, result.rule_id
"""

from homeserver.push.evaluator import (KINDS, NO_MATCH, PushContext, PushResult, PushRuleEvaluator, evaluate,
                                       glob_matches)

__all__ = ["KINDS", "NO_MATCH", "PushContext", "PushResult", "PushRuleEvaluator", "evaluate", "glob_matches"]
