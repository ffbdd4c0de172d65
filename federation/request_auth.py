"""X-Matrix request authentication between servers: signing outgoing requests and
reading the Authorization header of incoming ones. Pure: no I/O (keys are passed in).

The signed object is ``{method, uri, origin, destination[, content]}``; the header
carries ``origin``, ``destination``, ``key`` and ``sig``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

SCHEME = "X-Matrix"


class RequestAuthError(ValueError):
    """The header is malformed or the signature does not verify; the message says which."""


@dataclass(frozen=True)
class XMatrixHeader:
    origin: str
    destination: str | None
    key: str
    sig: str


def request_json(method: str, uri: str, origin: str, destination: str, content: Any = None) -> dict:
    body = {"method": method, "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        body["content"] = content
    return body


def authorization_header(method: str, uri: str, origin: str, destination: str, signing_key,
                         content: Any = None) -> str:
    """The Authorization header value for an outgoing request (as older servers expect
    it: one space, lower-case names, quoted values, no spaces around commas)."""
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, signing_key)
    (key_id, signature), = signed["signatures"][origin].items()
    return f'{SCHEME} origin="{origin}",destination="{destination}",key="{key_id}",sig="{signature}"'


def _split_params(text: str) -> list[str]:
    """Split on commas outside quoted strings."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise RequestAuthError("unterminated quoted value in Authorization header")
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner, out, escaped = value[1:-1], [], False
        for char in inner:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        return "".join(out)
    return value


def parse_authorization(header: str) -> XMatrixHeader:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not rest.strip():
        raise RequestAuthError("Authorization header is not X-Matrix")
    params: dict[str, str] = {}
    for part in _split_params(rest):
        if not part.strip(" \t"):
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise RequestAuthError(f"malformed parameter {part.strip()!r} in Authorization header")
        params[name.strip(" \t").lower()] = _unquote(value)
    for required in ("origin", "key", "sig"):
        if not params.get(required):
            raise RequestAuthError(f"Authorization header lacks {required}")
    return XMatrixHeader(params["origin"], params.get("destination"), params["key"], params["sig"])


def verify_request(header: XMatrixHeader, method: str, uri: str, our_server_name: str, verify_key,
                   content: Any = None) -> None:
    """Raise RequestAuthError unless ``header.sig`` signs this request with ``verify_key``
    (the origin's key named ``header.key``)."""
    if header.destination is not None and header.destination != our_server_name:
        raise RequestAuthError("request was signed for another destination")
    body = request_json(method, uri, header.origin, header.destination or our_server_name, content)
    body["signatures"] = {header.origin: {header.key: header.sig}}
    try:
        verify_signed_json(body, header.origin, verify_key)
    except SignatureVerifyException as error:
        raise RequestAuthError(f"signature does not verify: {error}") from None
