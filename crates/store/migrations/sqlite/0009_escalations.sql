-- Handovers to human agents, one row per escalation, merged from every write of it. Kept in step
-- with migrations/postgres: the same table, columns and indexes.

CREATE TABLE escalations (
    id                   TEXT NOT NULL,
    escalation_id        TEXT NOT NULL,
    organisation         TEXT NOT NULL,
    project_id           TEXT NOT NULL,
    session_id           TEXT NOT NULL,
    contact_id           TEXT,
    timestamp            INTEGER NOT NULL,
    status               TEXT NOT NULL,
    inbox_id             TEXT,
    inbox_name           TEXT,
    team_id              TEXT,
    team_name            TEXT,
    agent_id             TEXT,
    agent_name           TEXT,
    labels               TEXT,
    channel              TEXT,
    endpoint_name        TEXT,
    endpoint_type        TEXT,
    endpoint_url_token   TEXT,
    locale_name          TEXT,
    locale_reference_id  TEXT,
    snapshot_id          TEXT,
    snapshot_name        TEXT,
    assigned_at          INTEGER,
    first_response_at    INTEGER,
    resolved_at          INTEGER,
    expires_at           INTEGER,
    -- For each field merged by event time, the time of the write its value came from.
    merge_times          TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX escalations_project_escalation ON escalations (project_id, escalation_id);
CREATE INDEX escalations_project_session ON escalations (project_id, session_id);
CREATE INDEX escalations_project_contact ON escalations (project_id, contact_id);
CREATE INDEX escalations_expires_at ON escalations (expires_at) WHERE expires_at IS NOT NULL;
