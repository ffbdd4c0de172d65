-- Push rules and pushers. A user's rule set is the specification's predefined rules
-- (homeserver/push/default_rules.py, never stored) merged with what is stored here:
-- the user's own rules, and the user's changes to predefined rules' enabled flag and
-- actions.

-- The user's own rules. Within (user_id, kind) a higher priority is more important;
-- priorities are renumbered 0..n-1 whenever a rule is added.
CREATE TABLE push_rules_user_rules (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    -- JSON array: override and underride rules
    conditions TEXT,
    -- content rules
    pattern TEXT,
    -- JSON array
    actions TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- Changes to a predefined (".m.rule.*") rule; NULL keeps the predefined value.
CREATE TABLE push_rules_default_settings (
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    enabled BOOLEAN,
    -- JSON array
    actions TEXT,
    PRIMARY KEY (user_id, kind, rule_id)
);

-- POST /pushers/set. One pusher per (app_id, pushkey, user): with append=false a new
-- one replaces those of other users.
CREATE TABLE push_rules_pushers (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    kind TEXT NOT NULL,
    app_display_name TEXT NOT NULL,
    device_display_name TEXT NOT NULL,
    profile_tag TEXT,
    lang TEXT NOT NULL,
    -- JSON object, with url for http pushers
    data TEXT NOT NULL,
    -- the device that set it, if known
    device_id TEXT,
    created_ts BIGINT NOT NULL,
    PRIMARY KEY (app_id, pushkey, user_id)
);
CREATE INDEX push_rules_pushers_user ON push_rules_pushers (user_id);
