-- Conversations (one row per message) and the sessions parley derives from records and messages.
-- Kept in step with migrations/sqlite: the same tables, columns and index names, except the
-- search index, which each engine builds its own way. Both tables hold a project's data and are
-- distributed by project on Citus (postgres/citus.rs).

CREATE TABLE messages (
    id                        text COLLATE "C" NOT NULL,
    message_id                text COLLATE "C" NOT NULL,
    organisation              text COLLATE "C" NOT NULL,
    project_id                text COLLATE "C" NOT NULL,
    project_name              text COLLATE "C",
    session_id                text COLLATE "C" NOT NULL,
    contact_id                text COLLATE "C" NOT NULL,
    input_id                  text COLLATE "C",
    output_id                 text COLLATE "C",
    message_type              text COLLATE "C" NOT NULL,
    source                    text COLLATE "C" NOT NULL,
    input_text                text COLLATE "C",
    input_data                json,
    input_attachments         json,
    timestamp                 timestamptz NOT NULL,
    flow_name                 text COLLATE "C",
    flow_reference_id         text COLLATE "C",
    channel                   text COLLATE "C",
    endpoint_name             text COLLATE "C",
    endpoint_url_token        text COLLATE "C",
    locale_name               text COLLATE "C",
    locale_reference_id       text COLLATE "C",
    snapshot_id               text COLLATE "C",
    snapshot_name             text COLLATE "C",
    in_handover_request       boolean,
    in_handover_conversation  boolean,
    rating                    float8,
    rating_comment            text COLLATE "C",
    expires_at                timestamptz,
    CONSTRAINT messages_pkey PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX messages_project_message ON messages (project_id, message_id);
CREATE INDEX messages_project_session ON messages (project_id, session_id, timestamp, id);
CREATE INDEX messages_project_contact ON messages (project_id, contact_id);
CREATE INDEX messages_expires_at ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- Words of message texts, lower-cased, with no stemming and no stop words (the 'simple'
-- configuration), as SQLite's index has them.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', coalesce(input_text, '')));

CREATE TABLE sessions (
    id                     text COLLATE "C" NOT NULL,
    organisation           text COLLATE "C" NOT NULL,
    project_id             text COLLATE "C" NOT NULL,
    project_name           text COLLATE "C",
    session_id             text COLLATE "C" NOT NULL,
    contact_id             text COLLATE "C" NOT NULL,
    started_at             timestamptz NOT NULL,
    last_activity_at       timestamptz NOT NULL,
    channel                text COLLATE "C",
    endpoint_name          text COLLATE "C",
    endpoint_url_token     text COLLATE "C",
    endpoint_reference_id  text COLLATE "C",
    locale_name            text COLLATE "C",
    locale_reference_id    text COLLATE "C",
    snapshot_id            text COLLATE "C",
    snapshot_name          text COLLATE "C",
    steps_count            int8 NOT NULL,
    step_path              text COLLATE "C" NOT NULL,
    goals                  text COLLATE "C" NOT NULL,
    handover_escalations   int8 NOT NULL,
    rating                 float8,
    rating_comment         text COLLATE "C",
    inputs_count           int8 NOT NULL,
    messages_count         int8 NOT NULL,
    flow_name              text COLLATE "C",
    first_message_at       timestamptz,
    last_message_at        timestamptz,
    expires_at             timestamptz,
    -- The keys of the rows the derived values came from, so that new rows merge in.
    derivation             json,
    CONSTRAINT sessions_pkey PRIMARY KEY (project_id, session_id)
);
CREATE UNIQUE INDEX sessions_project_id ON sessions (project_id, id);
CREATE INDEX sessions_project_last_message ON sessions (project_id, last_message_at, session_id);
CREATE INDEX sessions_project_contact ON sessions (project_id, contact_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at) WHERE expires_at IS NOT NULL;

-- A session is derived from its records: they are looked up by session.
CREATE INDEX records_project_session ON records (project_id, session_id);
