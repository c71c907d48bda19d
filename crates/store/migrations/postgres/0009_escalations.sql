-- Handovers to human agents, one row per escalation, merged from every write of it. Kept in step
-- with migrations/sqlite: the same table, columns and indexes.
-- Distributed by project on Citus (postgres/citus.rs).

CREATE TABLE escalations (
    id                   text COLLATE "C" NOT NULL,
    escalation_id        text COLLATE "C" NOT NULL,
    organisation         text COLLATE "C" NOT NULL,
    project_id           text COLLATE "C" NOT NULL,
    session_id           text COLLATE "C" NOT NULL,
    contact_id           text COLLATE "C",
    timestamp            timestamptz NOT NULL,
    status               text COLLATE "C" NOT NULL,
    inbox_id             text COLLATE "C",
    inbox_name           text COLLATE "C",
    team_id              text COLLATE "C",
    team_name            text COLLATE "C",
    agent_id             text COLLATE "C",
    agent_name           text COLLATE "C",
    labels               json,
    channel              text COLLATE "C",
    endpoint_name        text COLLATE "C",
    endpoint_type        text COLLATE "C",
    endpoint_url_token   text COLLATE "C",
    locale_name          text COLLATE "C",
    locale_reference_id  text COLLATE "C",
    snapshot_id          text COLLATE "C",
    snapshot_name        text COLLATE "C",
    assigned_at          timestamptz,
    first_response_at    timestamptz,
    resolved_at          timestamptz,
    expires_at           timestamptz,
    -- For each field merged by event time, the time of the write its value came from.
    merge_times          json NOT NULL,
    CONSTRAINT escalations_pkey PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX escalations_project_escalation ON escalations (project_id, escalation_id);
CREATE INDEX escalations_project_session ON escalations (project_id, session_id);
CREATE INDEX escalations_project_contact ON escalations (project_id, contact_id);
CREATE INDEX escalations_expires_at ON escalations (expires_at) WHERE expires_at IS NOT NULL;
