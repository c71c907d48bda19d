-- Pending updates (rest.md §1), erasure tasks (rest.md §4), and the index of the retention purge.
--
-- Kept in step with migrations/sqlite. Citus: both new tables are small and become reference
-- tables (SELECT create_reference_table('pending_updates'); SELECT create_reference_table('tasks'););
-- the index on records leads with the distribution column.

-- An update that named an inputId and matched nothing, kept until its record is ingested or it
-- expires. `seq` orders the updates waiting for one input by arrival (assigned under a lock, see
-- the engine); `properties` is the JSON object of the update's changes, kept as written (`json`).
CREATE TABLE pending_updates (
    project_id   text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    input_id     text COLLATE "C" NOT NULL,
    seq          bigint NOT NULL,
    contact_id   text COLLATE "C" NOT NULL,
    session_id   text COLLATE "C",
    properties   json NOT NULL,
    received_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (project_id, input_id, seq)
);
CREATE INDEX pending_updates_expires_at ON pending_updates (expires_at);
CREATE INDEX pending_updates_contact ON pending_updates (project_id, contact_id);

-- Erasure tasks. `erasure` holds the request until the task finishes.
CREATE TABLE tasks (
    id            text COLLATE "C" PRIMARY KEY,
    organisation  text COLLATE "C" NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    project_id    text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_by    text COLLATE "C" NOT NULL,
    status        text COLLATE "C" NOT NULL,
    erasure       jsonb,
    deleted       bigint NOT NULL,
    error         text COLLATE "C",
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz
);
CREATE INDEX tasks_unfinished ON tasks (created_at, id) WHERE status IN ('queued', 'running');
CREATE INDEX tasks_project ON tasks (project_id);

-- The retention purge deletes project by project, so its index leads with the project.
DROP INDEX records_expires_at;
CREATE INDEX records_project_expires_at ON records (project_id, expires_at) WHERE expires_at IS NOT NULL;
