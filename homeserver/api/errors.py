"""The one error shape of ``/api/v1``: Matrix error JSON, as on the Matrix face.

Failures are raised as ``MatrixError`` (see ``homeserver.http.errors``) and rendered by
the router; this module only describes that shape for the OpenAPI document.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["errcode", "error"],
    "properties": {
        "errcode": {"type": "string", "examples": ["M_FORBIDDEN"]},
        "error": {"type": "string", "description": "A human-readable message."},
        "retry_after_ms": {"type": "integer", "description": "With M_LIMIT_EXCEEDED (429)."},
        "soft_logout": {"type": "boolean", "description": "With M_UNKNOWN_TOKEN: refresh instead of logging in."},
    },
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error_responses(*, has_body: bool, auth: bool, rate_limited: bool) -> dict:
    """The error answers a route can give, for its OpenAPI ``responses``."""
    statuses = {}
    if has_body:
        statuses["400"] = "Invalid request body (M_NOT_JSON, M_BAD_JSON, M_MISSING_PARAM, M_INVALID_PARAM, ...)"
    if auth:
        statuses["401"] = "Missing or unknown access token (M_MISSING_TOKEN, M_UNKNOWN_TOKEN)"
    if rate_limited:
        statuses["429"] = "Rate limited (M_LIMIT_EXCEEDED)"
    return {status: {"description": text, "content": {"application/json": {"schema": _ERROR_REF}}}
            for status, text in statuses.items()}
