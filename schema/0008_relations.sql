-- Relations between events (m.relates_to): threads, edits, reactions, references.
-- Written in the same transaction as the relating event.

CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY,
    relates_to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    -- the reaction key of an m.annotation
    aggregation_key TEXT,
    room_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    type TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_target ON event_relations (relates_to_id, rel_type, stream_ordering);
CREATE INDEX event_relations_threads ON event_relations (room_id, rel_type, stream_ordering);
