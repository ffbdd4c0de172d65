-- Discovery (SQLite): full-text search over room events (FTS5), the user directory, and
-- how far the follower that fills both has read the events table.
-- The PostgreSQL twin is 0007_search.postgres.sql (tsvector + GIN); keep them in step.

-- Up to which stream_ordering the discovery follower has processed events ('discovery').
-- Everything above it is read again at the next start, so nothing is lost across restarts.
CREATE TABLE discovery_positions (
    name TEXT PRIMARY KEY,
    stream_ordering BIGINT NOT NULL
);

-- One row per searchable event: m.room.message (content.body), m.room.name
-- (content.name), m.room.topic (content.topic). Rows of redacted events are deleted.
CREATE TABLE event_search (
    stream_ordering BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    origin_server_ts BIGINT NOT NULL
);
CREATE INDEX event_search_room ON event_search (room_id, stream_ordering);

-- The text, keyed by rowid = event_search.stream_ordering. Porter stemming over the
-- unicode61 tokenizer, accents folded ("café" finds "cafe").
CREATE VIRTUAL TABLE event_search_fts USING fts5(value, tokenize = 'porter unicode61 remove_diacritics 2');

-- The user directory: one searchable profile per user seen in a room (local users:
-- their profile; remote users: their latest join event). Lower-cased copies for
-- case-insensitive matching on both engines.
CREATE TABLE user_directory (
    user_id TEXT PRIMARY KEY,
    display_name TEXT,
    avatar_url TEXT,
    user_id_lower TEXT NOT NULL,
    display_name_lower TEXT
);

-- Rooms whose members everyone may find: join rule public or history world_readable.
CREATE TABLE user_directory_public_rooms (
    room_id TEXT PRIMARY KEY
);
