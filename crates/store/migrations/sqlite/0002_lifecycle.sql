-- Pending updates (rest.md §1), erasure tasks (rest.md §4), and the index of the retention purge.
-- Times are milliseconds since the Unix epoch.

-- An update that named an inputId and matched nothing, kept until its record is ingested or it
-- expires. `seq` orders the updates waiting for one input by arrival; `properties` is the JSON
-- object of the update's changes.
CREATE TABLE pending_updates (
    project_id   TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    input_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    contact_id   TEXT NOT NULL,
    session_id   TEXT,
    properties   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (project_id, input_id, seq)
);
CREATE INDEX pending_updates_expires_at ON pending_updates (expires_at);
CREATE INDEX pending_updates_contact ON pending_updates (project_id, contact_id);

-- Erasure tasks. `erasure` holds the request (JSON) until the task finishes.
CREATE TABLE tasks (
    id            TEXT PRIMARY KEY,
    organisation  TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    project_id    TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created_by    TEXT NOT NULL,
    status        TEXT NOT NULL,
    erasure       TEXT,
    deleted       INTEGER NOT NULL,
    error         TEXT,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER
);
CREATE INDEX tasks_unfinished ON tasks (created_at, id) WHERE status IN ('queued', 'running');
CREATE INDEX tasks_project ON tasks (project_id);

-- The retention purge deletes project by project, so its index leads with the project.
DROP INDEX records_expires_at;
CREATE INDEX records_project_expires_at ON records (project_id, expires_at) WHERE expires_at IS NOT NULL;
