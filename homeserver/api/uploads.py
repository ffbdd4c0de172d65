"""Files sent as a request's raw body to /api/v1 (server icons, avatars): reading them and
telling images from anything else by their bytes, never by what the client claims."""

from __future__ import annotations

import io

from PIL import Image

from homeserver.http.errors import MatrixError, invalid_param

MAX_IMAGE_BYTES = 5 * 1024 * 1024  # as the original's avatars and icons
_IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


def request_bytes(call) -> bytes:
    call.request.content.seek(0)
    return call.request.content.read()


def image_type(data: bytes, limit: int) -> str:
    """The content type of an uploaded image, judged from its bytes."""
    if not data:
        raise invalid_param("The image is empty")
    if len(data) > limit:
        raise MatrixError(413, "M_TOO_LARGE", f"An image may be at most {limit} bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except Exception:  # Pillow raises many types for bad input
        raise invalid_param("The body is not a readable image") from None
    if kind not in _IMAGE_TYPES:
        raise invalid_param("The image must be PNG, JPEG, GIF or WebP")
    return _IMAGE_TYPES[kind]
