"""The headers that make served media safe to open in a browser.

Uploaded bytes are attacker-controlled. A browser must never run them as a page of the
homeserver's origin, so every media response carries a sandboxing Content-Security-Policy
and ``nosniff``, and only types that cannot script (plain images, audio, video, plain
text) are served ``inline``; everything else, HTML and SVG included, is an
``attachment``. File names are encoded per RFC 6266 / RFC 8187.
"""

from __future__ import annotations

from urllib.parse import quote

from homeserver.media.thumbnails import base_type

# The specification's list for Content-Disposition: inline ("Serving inline content").
# SVG is an image but can carry script; it is not here.
INLINE_CONTENT_TYPES = frozenset({
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave", "audio/wav",
    "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac",
})

# As the specification recommends (plus media-src, so inline audio and video play).
CONTENT_SECURITY_POLICY = (b"sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf;"
                           b" style-src 'unsafe-inline'; media-src 'self'; object-src 'self';")

# The ID names the bytes forever: caches may keep them. Authenticated downloads must not
# be shared between users by a proxy, hence "private" there.
CACHE_PUBLIC = b"public, max-age=86400, immutable"
CACHE_PRIVATE = b"private, max-age=86400, immutable"

# RFC 8187 attr-char: what may stand unescaped in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"


def is_inline_safe(content_type: str | None) -> bool:
    return base_type(content_type) in INLINE_CONTENT_TYPES


def content_disposition(content_type: str | None, filename: str | None, force_inline: bool = False) -> bytes:
    """``inline`` or ``attachment``, with the file name when there is one.

    Printable ASCII names (without quote or backslash) go in ``filename="..."``; any
    other name goes in ``filename*=utf-8''<percent-encoded>``, so no byte of a name can
    end the header or inject another.
    """
    disposition = "inline" if force_inline or is_inline_safe(content_type) else "attachment"
    if not filename:
        return disposition.encode("ascii")
    if all(0x20 <= ord(ch) < 0x7F for ch in filename) and '"' not in filename and "\\" not in filename:
        return f'{disposition}; filename="{filename}"'.encode("ascii")
    encoded = quote(filename, safe=_ATTR_CHARS, encoding="utf-8")
    return f"{disposition}; filename*=utf-8''{encoded}".encode("ascii")


def media_headers(content_type: str | None, filename: str | None, *, authenticated: bool,
                  force_inline: bool = False) -> dict[bytes, bytes]:
    """Every header of a media response except Content-Type and Content-Length."""
    return {
        b"Content-Disposition": content_disposition(content_type, filename, force_inline),
        b"Content-Security-Policy": CONTENT_SECURITY_POLICY,
        b"X-Content-Type-Options": b"nosniff",
        b"Cross-Origin-Resource-Policy": b"cross-origin",
        b"Cache-Control": CACHE_PRIVATE if authenticated else CACHE_PUBLIC,
    }
