-- Organisations, users, keys, projects, memberships and analytics records.
--
-- Kept in step with migrations/sqlite: the same tables, columns, constraint and index names.
-- Text columns use the "C" collation, so text sorts by its UTF-8 bytes as it does in SQLite
-- whatever the database's locale, and keyset cursors page identically on both engines. Times are
-- timestamptz holding millisecond values. The JSON values and string lists of records are `json`,
-- not `jsonb`: `json` keeps the text exactly as written (key order included), so a record reads
-- back as it was stored and its text form is the same as in SQLite. Settings and roles, which
-- parley alone writes, are `jsonb`.
--
-- Citus: `records` is distributed by `project_id` (its primary key and every unique key include
-- it); the other tables are small and become reference tables:
--   SELECT create_reference_table('organisations'); SELECT create_reference_table('users');
--   SELECT create_reference_table('api_keys'); SELECT create_reference_table('projects');
--   SELECT create_reference_table('project_members');
--   SELECT create_distributed_table('records', 'project_id');

CREATE TABLE organisations (
    id          text COLLATE "C" PRIMARY KEY,
    name        text COLLATE "C" NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id             text COLLATE "C" PRIMARY KEY,
    organisation   text COLLATE "C" NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email          text COLLATE "C" NOT NULL,
    name           text COLLATE "C" NOT NULL,
    password_hash  text COLLATE "C",
    roles          jsonb NOT NULL,
    created_at     timestamptz NOT NULL,
    CONSTRAINT users_organisation_email UNIQUE (organisation, email)
);

CREATE TABLE api_keys (
    id           text COLLATE "C" PRIMARY KEY,
    user_id      text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text COLLATE "C" NOT NULL,
    secret_hash  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    CONSTRAINT api_keys_secret_hash UNIQUE (secret_hash)
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE projects (
    id            text COLLATE "C" PRIMARY KEY,
    organisation  text COLLATE "C" NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name          text COLLATE "C" NOT NULL,
    settings      jsonb NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX projects_organisation ON projects (organisation, created_at, id);

CREATE TABLE project_members (
    project_id  text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roles       jsonb NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

CREATE TABLE records (
    id                        text COLLATE "C" NOT NULL,
    organisation              text COLLATE "C" NOT NULL,
    project_id                text COLLATE "C" NOT NULL,
    contact_id                text COLLATE "C" NOT NULL,
    session_id                text COLLATE "C" NOT NULL,
    input_id                  text COLLATE "C" NOT NULL,
    timestamp                 timestamptz NOT NULL,
    input_text                text COLLATE "C",
    input_data                json,
    state                     text COLLATE "C",
    mode                      text COLLATE "C",
    user_type                 text COLLATE "C",
    channel                   text COLLATE "C",
    flow_language             text COLLATE "C",
    flow_name                 text COLLATE "C",
    flow_reference_id         text COLLATE "C",
    entrypoint                text COLLATE "C",
    entrypoint_type           text COLLATE "C",
    intent                    text COLLATE "C",
    intent_flow               text COLLATE "C",
    intent_score              double precision,
    slots                     json,
    found_slots               text COLLATE "C",
    found_slot_details        text COLLATE "C",
    completed_goals           json,
    tracked_goals             json,
    understood                boolean,
    execution_time            double precision,
    execution                 bigint,
    locale_name               text COLLATE "C",
    locale_reference_id       text COLLATE "C",
    endpoint_name             text COLLATE "C",
    endpoint_url_token        text COLLATE "C",
    endpoint_type             text COLLATE "C",
    snapshot_name             text COLLATE "C",
    rating                    double precision,
    rating_comment            text COLLATE "C",
    in_handover_request       boolean,
    in_handover_conversation  boolean,
    handover_escalations      bigint,
    custom1                   text COLLATE "C",
    custom2                   text COLLATE "C",
    custom3                   text COLLATE "C",
    custom4                   text COLLATE "C",
    custom5                   text COLLATE "C",
    custom6                   text COLLATE "C",
    custom7                   text COLLATE "C",
    custom8                   text COLLATE "C",
    custom9                   text COLLATE "C",
    custom10                  text COLLATE "C",
    ip                        text COLLATE "C",
    expires_at                timestamptz,
    updated_at                timestamptz NOT NULL,
    CONSTRAINT records_pkey PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX records_project_input ON records (project_id, input_id);
CREATE INDEX records_project_contact ON records (project_id, contact_id, session_id, input_id);
CREATE INDEX records_project_timestamp ON records (project_id, timestamp, id);
CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at IS NOT NULL;
