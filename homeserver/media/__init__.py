"""The media repository (content upload, download and thumbnails).

- ``repository``: the handler — what is stored and served, and the Matrix errors.
- ``storage_backends``: where the bytes live (local disk or S3).
- ``thumbnails``: making thumbnails with Pillow.
- ``headers``: the response headers that keep served media from running in a browser.
- ``remote``: the interface a federation fetcher plugs into.

The HTTP endpoints are in ``homeserver.client.media``; docs/media.md describes it all.
"""
