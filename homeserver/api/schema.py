"""Request bodies checked against the JSON Schema a route declares, so the OpenAPI
document and the validation are one and the same thing.

Only the subset the routes use is understood: ``type`` (one name or a list, ``null``
included), ``required``, ``properties`` (also of nested objects), ``minLength``,
``maxLength``, ``enum``, and for arrays ``items``, ``minItems``, ``maxItems``.
A missing field is M_MISSING_PARAM, anything else wrong is M_INVALID_PARAM.
"""

from __future__ import annotations

from typing import Any

from homeserver.http.errors import invalid_param, missing_param

_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    # JSON has no separate integer type; booleans are not integers here.
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}

_ARTICLES = {"string": "a string", "boolean": "a boolean", "integer": "an integer", "number": "a number",
             "object": "an object", "array": "an array", "null": "null"}


def validate_body(schema: dict, body: dict, prefix: str = "") -> None:
    for name in schema.get("required", ()):
        if name not in body:
            raise missing_param(prefix + name)
    for name, rules in schema.get("properties", {}).items():
        if name in body:
            _check_value(prefix + name, rules, body[name])


def _check_value(name: str, rules: dict, value: Any) -> None:
    kinds = rules.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_CHECKS[kind](value) for kind in kinds):
            raise invalid_param(f"'{name}' must be " + " or ".join(_ARTICLES[k] for k in kinds))
    if value is None:
        return
    if "enum" in rules and value not in rules["enum"]:
        raise invalid_param(f"'{name}' must be one of {', '.join(map(str, rules['enum']))}")
    if isinstance(value, str):
        if len(value) < rules.get("minLength", 0):
            raise invalid_param(f"'{name}' must be at least {rules['minLength']} characters")
        if "maxLength" in rules and len(value) > rules["maxLength"]:
            raise invalid_param(f"'{name}' must be at most {rules['maxLength']} characters")
    if isinstance(value, list):
        if len(value) < rules.get("minItems", 0):
            raise invalid_param(f"'{name}' must have at least {rules['minItems']} items")
        if "maxItems" in rules and len(value) > rules["maxItems"]:
            raise invalid_param(f"'{name}' must have at most {rules['maxItems']} items")
        if "items" in rules:
            for index, item in enumerate(value):
                _check_value(f"{name}[{index}]", rules["items"], item)
    if isinstance(value, dict) and "properties" in rules:
        validate_body(rules, value, prefix=f"{name}.")
