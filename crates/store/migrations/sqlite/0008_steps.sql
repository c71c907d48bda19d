-- Executed steps (one row per step a bot went through in a session) and the step catalogue parley
-- keeps from them. Kept in step with migrations/postgres: the same tables, columns and indexes.

CREATE TABLE executed_steps (
    id                   TEXT NOT NULL,
    execution_id         TEXT NOT NULL,
    project_id           TEXT NOT NULL,
    project_name         TEXT,
    organisation         TEXT NOT NULL,
    session_id           TEXT NOT NULL,
    contact_id           TEXT,
    input_id             TEXT,
    step_label           TEXT NOT NULL,
    step_type            TEXT NOT NULL,
    entity_reference_id  TEXT NOT NULL,
    -- What the client sent, or else the previous step of the session, kept exact on every write.
    parent_step          TEXT,
    flow_reference_id    TEXT,
    flow_name            TEXT,
    timestamp            INTEGER NOT NULL,
    locale_name          TEXT,
    locale_reference_id  TEXT,
    endpoint_name        TEXT,
    endpoint_url_token   TEXT,
    snapshot_id          TEXT,
    snapshot_name        TEXT,
    expires_at           INTEGER,
    -- The parentStep the client sent, if it did.
    sent_parent_step     TEXT,
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX executed_steps_project_execution ON executed_steps (project_id, execution_id);
CREATE INDEX executed_steps_project_session ON executed_steps (project_id, session_id, timestamp, execution_id);
CREATE INDEX executed_steps_project_contact ON executed_steps (project_id, contact_id);
CREATE INDEX executed_steps_expires_at ON executed_steps (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE steps (
    id                   TEXT NOT NULL,
    project_id           TEXT NOT NULL,
    organisation         TEXT NOT NULL,
    entity_reference_id  TEXT NOT NULL,
    label                TEXT NOT NULL,
    step_type            TEXT NOT NULL,
    flow_reference_id    TEXT,
    flow_name            TEXT,
    project_name         TEXT,
    snapshot_id          TEXT,
    snapshot_name        TEXT,
    -- The time of the latest execution, which the values come from. No execution id is kept: the
    -- catalogue describes the bot and keeps nothing that leads to a contact.
    executed_at          INTEGER NOT NULL,
    PRIMARY KEY (project_id, entity_reference_id)
);
CREATE UNIQUE INDEX steps_project_id ON steps (project_id, id);
