"""Parsing request bodies and parameters, with the Matrix error for each way they go wrong."""

from __future__ import annotations

import json
from typing import Any

from twisted.web import server

from homeserver.http.errors import bad_json, invalid_param, missing_param, not_json

_MISSING = object()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def parse_json_object(request: server.Request, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object: M_NOT_JSON if it is not JSON, M_BAD_JSON if not an object."""
    request.content.seek(0)
    raw = request.content.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise not_json("Request body is empty; a JSON object was expected")
    try:
        text = raw.decode("utf-8")
        body = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise not_json("Content not JSON.") from None
    if not isinstance(body, dict):
        raise bad_json("Content must be a JSON object.")
    return body


_TYPE_NAMES = {str: "a string", bool: "a boolean", int: "an integer", dict: "an object", list: "an array"}


def field(body: dict, name: str, kind: type, default: Any = _MISSING, *, nullable: bool = False) -> Any:
    """One field of a body: missing -> M_MISSING_PARAM (unless a default), wrong type -> M_INVALID_PARAM."""
    value = body.get(name, _MISSING)
    if value is _MISSING:
        if default is _MISSING:
            raise missing_param(name)
        return default
    if value is None and nullable:
        return None
    if kind is int:
        valid = isinstance(value, int) and not isinstance(value, bool)
    else:
        valid = isinstance(value, kind)
    if not valid:
        raise invalid_param(f"'{name}' must be {_TYPE_NAMES.get(kind, kind.__name__)}")
    return value


def query_str(request: server.Request, name: str, default: Any = None, required: bool = False) -> Any:
    values = request.args.get(name.encode())
    if not values:
        if required:
            raise missing_param(name)
        return default
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_param(f"Query parameter '{name}' is not UTF-8") from None


def query_int(request: server.Request, name: str, default: int | None = None, minimum: int | None = None) -> Any:
    text = query_str(request, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid_param(f"Query parameter '{name}' must be an integer") from None
    if minimum is not None and value < minimum:
        raise invalid_param(f"Query parameter '{name}' must be at least {minimum}")
    return value


def query_bool(request: server.Request, name: str, default: bool = False) -> bool:
    text = query_str(request, name)
    if text is None:
        return default
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise invalid_param(f"Query parameter '{name}' must be true or false")
