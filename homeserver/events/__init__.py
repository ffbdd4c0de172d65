"""The pure core: event format, hashes, signing, redaction, auth rules, state resolution.

Nothing in this package does I/O or touches Twisted; callers hand it events and state,
and it answers. Every difference between room versions comes from ``room_versions``.
"""
