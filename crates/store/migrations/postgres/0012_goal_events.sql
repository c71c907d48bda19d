-- Goal events (one row per goal step a session reached) and the goal cycles they make up. Kept in
-- step with migrations/sqlite: the same table, columns, indexes and view.
-- Distributed by project on Citus (postgres/citus.rs).

CREATE TABLE goal_events (
    id                   text COLLATE "C" NOT NULL,
    event_id             text COLLATE "C" NOT NULL,
    -- The goal's version when the event was written, unless the client sent one.
    version              text COLLATE "C" NOT NULL,
    timestamp            timestamptz NOT NULL,
    goal_cycle_id        text COLLATE "C" NOT NULL,
    step_id              text COLLATE "C" NOT NULL,
    -- The step's type in the goal's definition when the event was written.
    step_type            text COLLATE "C" NOT NULL,
    goal_id              text COLLATE "C" NOT NULL,
    session_id           text COLLATE "C" NOT NULL,
    contact_id           text COLLATE "C",
    project_id           text COLLATE "C" NOT NULL,
    organisation         text COLLATE "C" NOT NULL,
    expires_at           timestamptz,
    locale_name          text COLLATE "C",
    locale_reference_id  text COLLATE "C",
    endpoint_name        text COLLATE "C",
    endpoint_type        text COLLATE "C",
    endpoint_url_token   text COLLATE "C",
    channel              text COLLATE "C",
    snapshot_id          text COLLATE "C",
    snapshot_name        text COLLATE "C",
    CONSTRAINT goal_events_pkey PRIMARY KEY (project_id, id)
);
CREATE UNIQUE INDEX goal_events_project_event ON goal_events (project_id, event_id);
CREATE INDEX goal_events_project_session ON goal_events (project_id, session_id);
CREATE INDEX goal_events_project_cycle ON goal_events (project_id, goal_id, goal_cycle_id);
CREATE INDEX goal_events_project_contact ON goal_events (project_id, contact_id);
CREATE INDEX goal_events_expires_at ON goal_events (expires_at) WHERE expires_at IS NOT NULL;

-- A cycle is as far as its furthest step: completed with a completion step, partial with a step
-- after the start, incomplete otherwise. Read from the events as they are, so always exact.
CREATE VIEW goal_cycles AS
SELECT goal_id || ':' || goal_cycle_id AS id,
       goal_cycle_id,
       goal_id,
       project_id,
       MIN(organisation) AS organisation,
       MIN(session_id) AS session_id,
       MIN(contact_id) AS contact_id,
       CASE WHEN SUM(CASE WHEN step_type = 'completion' THEN 1 ELSE 0 END) > 0 THEN 'completed'
            WHEN SUM(CASE WHEN step_type = 'step' THEN 1 ELSE 0 END) > 0 THEN 'partial'
            ELSE 'incomplete' END AS status,
       MIN(timestamp) AS started_at,
       MAX(timestamp) AS last_event_at,
       MIN(CASE WHEN step_type = 'completion' THEN timestamp END) AS completed_at,
       COUNT(*) AS events_count
FROM goal_events
GROUP BY project_id, goal_id, goal_cycle_id;
