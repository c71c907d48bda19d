-- Organisations, users, keys, projects, memberships and analytics records.
-- Times are milliseconds since the Unix epoch; JSON values and string lists are JSON text.

CREATE TABLE organisations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    organisation   TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    password_hash  TEXT,
    roles          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    CONSTRAINT users_organisation_email UNIQUE (organisation, email)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    CONSTRAINT api_keys_secret_hash UNIQUE (secret_hash)
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE projects (
    id            TEXT PRIMARY KEY,
    organisation  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    settings      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX projects_organisation ON projects (organisation, created_at, id);

CREATE TABLE project_members (
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    roles       TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

CREATE TABLE records (
    id                        TEXT NOT NULL,
    organisation              TEXT NOT NULL,
    project_id                TEXT NOT NULL,
    contact_id                TEXT NOT NULL,
    session_id                TEXT NOT NULL,
    input_id                  TEXT NOT NULL,
    timestamp                 INTEGER NOT NULL,
    input_text                TEXT,
    input_data                TEXT,
    state                     TEXT,
    mode                      TEXT,
    user_type                 TEXT,
    channel                   TEXT,
    flow_language             TEXT,
    flow_name                 TEXT,
    flow_reference_id         TEXT,
    entrypoint                TEXT,
    entrypoint_type           TEXT,
    intent                    TEXT,
    intent_flow               TEXT,
    intent_score              REAL,
    slots                     TEXT,
    found_slots               TEXT,
    found_slot_details        TEXT,
    completed_goals           TEXT,
    tracked_goals             TEXT,
    understood                INTEGER,
    execution_time            REAL,
    execution                 INTEGER,
    locale_name               TEXT,
    locale_reference_id       TEXT,
    endpoint_name             TEXT,
    endpoint_url_token        TEXT,
    endpoint_type             TEXT,
    snapshot_name             TEXT,
    rating                    REAL,
    rating_comment            TEXT,
    in_handover_request       INTEGER,
    in_handover_conversation  INTEGER,
    handover_escalations      INTEGER,
    custom1                   TEXT,
    custom2                   TEXT,
    custom3                   TEXT,
    custom4                   TEXT,
    custom5                   TEXT,
    custom6                   TEXT,
    custom7                   TEXT,
    custom8                   TEXT,
    custom9                   TEXT,
    custom10                  TEXT,
    ip                        TEXT,
    expires_at                INTEGER,
    updated_at                INTEGER NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX records_project_input ON records (project_id, input_id);
CREATE INDEX records_project_contact ON records (project_id, contact_id, session_id, input_id);
CREATE INDEX records_project_timestamp ON records (project_id, timestamp, id);
CREATE INDEX records_expires_at ON records (expires_at) WHERE expires_at IS NOT NULL;
