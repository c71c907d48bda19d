-- Conversations (one row per message) and the sessions parley derives from records and messages.
-- Kept in step with migrations/postgres: the same tables, columns and index names, except the
-- search index, which each engine builds its own way.

CREATE TABLE messages (
    -- The full-text index refers to messages by this key; an explicit INTEGER PRIMARY KEY is never
    -- renumbered (a plain rowid may be, by VACUUM).
    search_key                INTEGER PRIMARY KEY,
    id                        TEXT NOT NULL,
    message_id                TEXT NOT NULL,
    organisation              TEXT NOT NULL,
    project_id                TEXT NOT NULL,
    project_name              TEXT,
    session_id                TEXT NOT NULL,
    contact_id                TEXT NOT NULL,
    input_id                  TEXT,
    output_id                 TEXT,
    message_type              TEXT NOT NULL,
    source                    TEXT NOT NULL,
    input_text                TEXT,
    input_data                TEXT,
    input_attachments         TEXT,
    timestamp                 INTEGER NOT NULL,
    flow_name                 TEXT,
    flow_reference_id         TEXT,
    channel                   TEXT,
    endpoint_name             TEXT,
    endpoint_url_token        TEXT,
    locale_name               TEXT,
    locale_reference_id       TEXT,
    snapshot_id               TEXT,
    snapshot_name             TEXT,
    in_handover_request       INTEGER,
    in_handover_conversation  INTEGER,
    rating                    REAL,
    rating_comment            TEXT,
    expires_at                INTEGER
);
CREATE UNIQUE INDEX messages_pkey ON messages (project_id, id);
CREATE UNIQUE INDEX messages_project_message ON messages (project_id, message_id);
CREATE INDEX messages_project_session ON messages (project_id, session_id, timestamp, id);
CREATE INDEX messages_project_contact ON messages (project_id, contact_id);
CREATE INDEX messages_expires_at ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Words of message texts. The index holds no copy of the text (it reads it from messages), and
-- with secure-delete a deleted message's words leave the index at once, not at a later merge.
CREATE VIRTUAL TABLE messages_search USING fts5 (
    input_text, content = 'messages', content_rowid = 'search_key', tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO messages_search (messages_search, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER messages_search_insert AFTER INSERT ON messages WHEN new.input_text IS NOT NULL BEGIN
    INSERT INTO messages_search (rowid, input_text) VALUES (new.search_key, new.input_text);
END;
CREATE TRIGGER messages_search_delete AFTER DELETE ON messages WHEN old.input_text IS NOT NULL BEGIN
    INSERT INTO messages_search (messages_search, rowid, input_text) VALUES ('delete', old.search_key, old.input_text);
END;

CREATE TABLE sessions (
    id                     TEXT NOT NULL,
    organisation           TEXT NOT NULL,
    project_id             TEXT NOT NULL,
    project_name           TEXT,
    session_id             TEXT NOT NULL,
    contact_id             TEXT NOT NULL,
    started_at             INTEGER NOT NULL,
    last_activity_at       INTEGER NOT NULL,
    channel                TEXT,
    endpoint_name          TEXT,
    endpoint_url_token     TEXT,
    endpoint_reference_id  TEXT,
    locale_name            TEXT,
    locale_reference_id    TEXT,
    snapshot_id            TEXT,
    snapshot_name          TEXT,
    steps_count            INTEGER NOT NULL,
    step_path              TEXT NOT NULL,
    goals                  TEXT NOT NULL,
    handover_escalations   INTEGER NOT NULL,
    rating                 REAL,
    rating_comment         TEXT,
    inputs_count           INTEGER NOT NULL,
    messages_count         INTEGER NOT NULL,
    flow_name              TEXT,
    first_message_at       INTEGER,
    last_message_at        INTEGER,
    expires_at             INTEGER,
    -- The keys of the rows the derived values came from, so that new rows merge in.
    derivation             TEXT,
    PRIMARY KEY (project_id, session_id)
);
CREATE UNIQUE INDEX sessions_project_id ON sessions (project_id, id);
CREATE INDEX sessions_project_last_message ON sessions (project_id, last_message_at, session_id);
CREATE INDEX sessions_project_contact ON sessions (project_id, contact_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at) WHERE expires_at IS NOT NULL;

-- A session is derived from its records: they are looked up by session.
CREATE INDEX records_project_session ON records (project_id, session_id);
