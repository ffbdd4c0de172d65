"""``multipart/mixed`` bodies of federation media (``/_matrix/federation/v1/media/...``).

Two parts: a JSON object (metadata, ``{}`` today), then the content with its
Content-Type (or a part with a ``Location`` header naming where to fetch it).
"""

from __future__ import annotations

import json
import re
import secrets

CRLF = b"\r\n"
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


class MultipartError(ValueError):
    """The body is not the multipart/mixed a media answer should be."""


def build(content: bytes, content_type: str, content_disposition: bytes | None = None,
          metadata: dict | None = None) -> tuple[bytes, bytes]:
    """(body, Content-Type header value) of a federation media answer."""
    boundary = secrets.token_hex(16).encode("ascii")
    delimiter = b"--" + boundary
    headers = b"Content-Type: " + content_type.encode("ascii", "replace") + CRLF
    if content_disposition:
        headers += b"Content-Disposition: " + content_disposition + CRLF
    body = b"".join([
        delimiter, CRLF, b"Content-Type: application/json", CRLF, CRLF,
        json.dumps(metadata or {}).encode("utf-8"), CRLF,
        delimiter, CRLF, headers, CRLF, content, CRLF,
        delimiter, b"--", CRLF,
    ])
    return body, b"multipart/mixed; boundary=" + boundary


def boundary_of(content_type: str | None) -> bytes:
    if not content_type or not content_type.strip().lower().startswith("multipart/"):
        raise MultipartError(f"not a multipart body: {content_type!r}")
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise MultipartError("multipart Content-Type without a boundary")
    return (found.group(1) or found.group(2)).encode("latin-1")


def _headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.split(CRLF):
        if not line.strip():
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise MultipartError("malformed part header")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return headers


def parse(body: bytes, content_type: str | None) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body: [(headers with lower-case names, content)]."""
    delimiter = b"--" + boundary_of(content_type)
    if body.startswith(delimiter):
        position = 0
    else:
        position = body.find(CRLF + delimiter)
        if position < 0:
            raise MultipartError("no boundary in the body")
        position += 2
    parts: list[tuple[dict[str, str], bytes]] = []
    while True:
        position += len(delimiter)
        if body[position:position + 2] == b"--":
            return parts
        line_end = body.find(CRLF, position)
        if line_end < 0:
            raise MultipartError("truncated multipart body")
        start = line_end + 2
        end = body.find(CRLF + delimiter, start)
        if end < 0:
            raise MultipartError("unterminated part")
        part = body[start:end]
        if part.startswith(CRLF):
            headers, content = {}, part[2:]
        else:
            raw_headers, sep, content = part.partition(CRLF + CRLF)
            if not sep:
                raise MultipartError("part without a blank line after its headers")
            headers = _headers(raw_headers)
        parts.append((headers, content))
        position = end + 2
