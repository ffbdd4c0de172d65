"""Voice and video through LiveKit (docs/voice.md).

- ``tokens``: access tokens for clients and for the RoomService calls (livekit-api)
- ``room_service``: LiveKit's RoomService (Twirp over HTTP) for server mute, deafen, move
  and disconnect
- ``service``: joining, leaving and moderating, kept as room state
  (``homeserver.drocsid.voice_rules``)
"""
