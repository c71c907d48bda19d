-- Executed steps (one row per step a bot went through in a session) and the step catalogue parley
-- keeps from them. Kept in step with migrations/sqlite: the same tables, columns and indexes. Both
-- hold a project's data and are distributed by project on Citus (postgres/citus.rs).

CREATE TABLE executed_steps (
    id                   text COLLATE "C" NOT NULL,
    execution_id         text COLLATE "C" NOT NULL,
    project_id           text COLLATE "C" NOT NULL,
    project_name         text COLLATE "C",
    organisation         text COLLATE "C" NOT NULL,
    session_id           text COLLATE "C" NOT NULL,
    contact_id           text COLLATE "C",
    input_id             text COLLATE "C",
    step_label           text COLLATE "C" NOT NULL,
    step_type            text COLLATE "C" NOT NULL,
    entity_reference_id  text COLLATE "C" NOT NULL,
    -- What the client sent, or else the previous step of the session, kept exact on every write.
    parent_step          text COLLATE "C",
    flow_reference_id    text COLLATE "C",
    flow_name            text COLLATE "C",
    timestamp            timestamptz NOT NULL,
    locale_name          text COLLATE "C",
    locale_reference_id  text COLLATE "C",
    endpoint_name        text COLLATE "C",
    endpoint_url_token   text COLLATE "C",
    snapshot_id          text COLLATE "C",
    snapshot_name        text COLLATE "C",
    expires_at           timestamptz,
    -- The parentStep the client sent, if it did.
    sent_parent_step     text COLLATE "C",
    CONSTRAINT executed_steps_pkey PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX executed_steps_project_execution ON executed_steps (project_id, execution_id);
CREATE INDEX executed_steps_project_session ON executed_steps (project_id, session_id, timestamp, execution_id);
CREATE INDEX executed_steps_project_contact ON executed_steps (project_id, contact_id);
CREATE INDEX executed_steps_expires_at ON executed_steps (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE steps (
    id                   text COLLATE "C" NOT NULL,
    project_id           text COLLATE "C" NOT NULL,
    organisation         text COLLATE "C" NOT NULL,
    entity_reference_id  text COLLATE "C" NOT NULL,
    label                text COLLATE "C" NOT NULL,
    step_type            text COLLATE "C" NOT NULL,
    flow_reference_id    text COLLATE "C",
    flow_name            text COLLATE "C",
    project_name         text COLLATE "C",
    snapshot_id          text COLLATE "C",
    snapshot_name        text COLLATE "C",
    -- The time of the latest execution, which the values come from. No execution id is kept: the
    -- catalogue describes the bot and keeps nothing that leads to a contact.
    executed_at          timestamptz NOT NULL,
    CONSTRAINT steps_pkey PRIMARY KEY (project_id, entity_reference_id)
);
CREATE UNIQUE INDEX steps_project_id ON steps (project_id, id);
