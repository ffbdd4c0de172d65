"""Thumbnails with Pillow: which box to make for a request, and making it.

Pure functions, no I/O: ``choose_box`` turns a client's request into one of a bounded
set of boxes (so a media item gets a handful of cached thumbnails, not one per pixel
size), and ``make_thumbnail`` turns the original's bytes into a thumbnail, or says the
original itself should be served. ``make_thumbnail`` is CPU-bound; the repository runs
it in a thread.

Methods follow the specification: ``scale`` keeps the aspect ratio and fits the image
inside the box; ``crop`` fills the box exactly and cuts off what spills over. Nothing is
ever upscaled: content smaller than the box is served as it is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence, features

METHODS = ("crop", "scale")

# The largest side of any thumbnail we make; larger requests are shrunk to it.
MAX_THUMBNAIL_SIDE = 1600
# Requests beyond this are nonsense rather than a big screen: 400.
MAX_REQUEST_SIDE = 10_000
# Originals with more pixels than this are not decoded (spec: 413 M_TOO_LARGE).
MAX_SOURCE_PIXELS = 40_000_000
# Animated thumbnails: at most this many frames and this many pixels over all frames.
MAX_ANIMATED_FRAMES = 300
MAX_ANIMATED_PIXELS = 100_000_000

# The sizes the specification recommends servers make; requests round up to them.
STANDARD_BOXES = {
    "crop": ((32, 32), (96, 96)),
    "scale": ((320, 240), (640, 480), (800, 600), (1600, 1200)),
}

# Content types we hand to Pillow, and the Pillow formats their bytes may be in.
THUMBNAILABLE_TYPES = frozenset({
    "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/apng", "image/gif", "image/webp",
    "image/bmp", "image/x-ms-bmp",
})
_PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
# Originals in these types may be served as their own thumbnail.
_SERVABLE_ORIGINAL_TYPES = frozenset({"image/jpeg", "image/png", "image/apng", "image/gif", "image/webp"})

_RESAMPLE = Image.Resampling.LANCZOS


class ThumbnailError(Exception):
    """The content cannot be thumbnailed (not an image Pillow reads)."""


class SourceTooLarge(ThumbnailError):
    """The original has too many pixels to decode safely."""


@dataclass(frozen=True)
class Box:
    """What to make: a ``width`` x ``height`` box, a method, and whether animation may stay."""
    width: int
    height: int
    method: str
    animated: bool


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    content_type: str
    width: int
    height: int


def base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def can_thumbnail(content_type: str | None) -> bool:
    return base_type(content_type) in THUMBNAILABLE_TYPES


def choose_box(width: int, height: int, method: str, animated: bool) -> Box:
    """The box to make for a request (already checked: 1 <= sides <= MAX_REQUEST_SIDE).

    Rounds up to the smallest standard box that is at least as large (for ``crop``, one
    of the same aspect ratio), so a thumbnail is never smaller than asked. A request
    larger than every standard box is kept, with its sides capped at MAX_THUMBNAIL_SIDE:
    for ``scale`` each side on its own (the image still fits the smaller box), for
    ``crop`` both in proportion (the aspect ratio is what was asked for).
    """
    for box_w, box_h in STANDARD_BOXES[method]:
        if box_w < width or box_h < height:
            continue
        if method == "crop" and box_w * height != box_h * width:
            continue
        return Box(box_w, box_h, method, animated)
    if method == "scale":
        return Box(min(width, MAX_THUMBNAIL_SIDE), min(height, MAX_THUMBNAIL_SIDE), method, animated)
    longest = max(width, height)
    if longest > MAX_THUMBNAIL_SIDE:
        width = max(1, round(width * MAX_THUMBNAIL_SIDE / longest))
        height = max(1, round(height * MAX_THUMBNAIL_SIDE / longest))
    return Box(width, height, method, animated)


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError as error:
        raise SourceTooLarge(str(error)) from None
    except Exception as error:  # Pillow raises many kinds for bad input
        raise ThumbnailError(f"cannot read the image: {error}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ThumbnailError("the image has no pixels")
    if width * height > MAX_SOURCE_PIXELS:
        raise SourceTooLarge(f"{width}x{height} is too large to thumbnail")
    return image


def _target_size(source: tuple[int, int], box: Box) -> tuple[tuple[int, int], tuple[float, float, float, float]]:
    """The output size and the region of the source it is made from."""
    src_w, src_h = source
    if box.method == "scale":
        if src_w <= box.width and src_h <= box.height:
            return source, (0, 0, src_w, src_h)  # never enlarged
        # Fit inside the box (the larger scale factor would overflow it).
        if box.width * src_h <= box.height * src_w:
            size = (box.width, max(1, round(box.width * src_h / src_w)))
        else:
            size = (max(1, round(box.height * src_w / src_h)), box.height)
        return size, (0, 0, src_w, src_h)
    # crop: the largest centred region of the source with the box's aspect ratio ...
    if src_w * box.height > src_h * box.width:
        region_w, region_h = src_h * box.width / box.height, float(src_h)
    else:
        region_w, region_h = float(src_w), src_w * box.height / box.width
    left, top = (src_w - region_w) / 2, (src_h - region_h) / 2
    region = (left, top, left + region_w, top + region_h)
    # ... shrunk to the box, but never enlarged: a region smaller than the box stays as is.
    if region_w <= box.width:
        return (max(1, round(region_w)), max(1, round(region_h))), region
    return (box.width, box.height), region


def _oriented_size(image: Image.Image) -> tuple[int, int]:
    """The size as displayed: EXIF orientations 5-8 swap width and height."""
    try:
        orientation = image.getexif().get(0x0112)
    except Exception:
        orientation = None
    return (image.height, image.width) if orientation in (5, 6, 7, 8) else image.size


def _normalise_mode(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    has_alpha = image.mode in ("PA", "RGBa", "La") or "transparency" in image.info or image.mode.endswith("A")
    return image.convert("RGBA" if has_alpha else "RGB")


def _encode_static(image: Image.Image, source_format: str | None) -> tuple[bytes, str]:
    out = io.BytesIO()
    if source_format == "JPEG":
        image.convert("RGB").save(out, format="JPEG", quality=80)
        return out.getvalue(), "image/jpeg"
    image.save(out, format="PNG")
    return out.getvalue(), "image/png"


def _animated_output_format() -> tuple[str, str]:
    # The specification prefers WebP for animated thumbnails; GIF if Pillow lacks it.
    return ("WEBP", "image/webp") if features.check("webp") else ("GIF", "image/gif")


def _resize(image: Image.Image, size: tuple[int, int], region) -> Image.Image:
    if size == image.size and region == (0, 0, image.width, image.height):
        return image
    if size == (round(region[2] - region[0]), round(region[3] - region[1])):
        return image.crop(tuple(round(v) for v in region))
    return image.resize(size, _RESAMPLE, box=region)


def _make_animated(image: Image.Image, box: Box) -> Thumbnail | None:
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_ANIMATED_FRAMES or frames * image.width * image.height > MAX_ANIMATED_PIXELS:
        return None
    size, region = _target_size(image.size, box)
    out_frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        durations.append(frame.info.get("duration", 100) or 100)
        out_frames.append(_resize(frame.convert("RGBA"), size, region))
    fmt, content_type = _animated_output_format()
    out = io.BytesIO()
    options = {"quality": 80} if fmt == "WEBP" else {"disposal": 2}
    out_frames[0].save(out, format=fmt, save_all=True, append_images=out_frames[1:], duration=durations,
                       loop=0, **options)
    return Thumbnail(out.getvalue(), content_type, size[0], size[1])


def make_thumbnail(data: bytes, content_type: str | None, box: Box) -> Thumbnail | None:
    """A thumbnail of ``data`` for ``box``; None when the original itself should be served.

    Raises ThumbnailError when the bytes are not an image we read (SourceTooLarge when
    the image has too many pixels to decode).
    """
    image = _open(data)
    source_format = image.format
    is_animated = bool(getattr(image, "is_animated", False))
    width, height = _oriented_size(image)
    fits = width <= box.width and height <= box.height
    if fits and base_type(content_type) in _SERVABLE_ORIGINAL_TYPES and (box.animated or not is_animated):
        return None

    try:
        if is_animated and box.animated:
            animated = _make_animated(image, box)
            if animated is not None:
                return animated
            image.seek(0)
        if source_format == "JPEG":
            # Let the decoder skip detail we would throw away (DCT scaling); it keeps
            # at least the size asked for.
            longest = max(box.width, box.height)
            image.draft("RGB", (longest, longest))
        image.load()
        image = ImageOps.exif_transpose(image) or image
        image = _normalise_mode(image)
        size, region = _target_size(image.size, box)
        thumbnail = _resize(image, size, region)
        encoded, out_type = _encode_static(thumbnail, source_format)
    except ThumbnailError:
        raise
    except Image.DecompressionBombError as error:
        raise SourceTooLarge(str(error)) from None
    except Exception as error:
        raise ThumbnailError(f"cannot thumbnail the image: {error}") from None
    return Thumbnail(encoded, out_type, thumbnail.width, thumbnail.height)
