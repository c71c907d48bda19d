-- Goals a project's admins define: the current version of each, its steps and their metrics.
-- Kept in step with migrations/postgres: the same tables, columns and indexes.

CREATE TABLE goals (
    id               TEXT NOT NULL,
    project_id       TEXT NOT NULL,
    organisation     TEXT NOT NULL,
    name             TEXT NOT NULL,
    version          TEXT NOT NULL,
    description      TEXT,
    reference_id     TEXT,
    created_at       INTEGER NOT NULL,
    last_changed     INTEGER NOT NULL,
    created_by       TEXT NOT NULL,
    last_changed_by  TEXT NOT NULL,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE goal_steps (
    id            TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    organisation  TEXT NOT NULL,
    goal_id       TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    description   TEXT,
    step_order    INTEGER NOT NULL,
    text          TEXT,
    step_type     TEXT NOT NULL,
    -- Where the step stands in its goal's definition.
    position      INTEGER NOT NULL,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE goal_step_metrics (
    id            TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    organisation  TEXT NOT NULL,
    goal_id       TEXT NOT NULL,
    goal_step_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    description   TEXT,
    value         REAL NOT NULL,
    metric_type   TEXT NOT NULL,
    -- Where the metric stands in its step's definition.
    position      INTEGER NOT NULL,
    PRIMARY KEY (project_id, id)
);
CREATE INDEX goal_steps_project_goal ON goal_steps (project_id, goal_id);
CREATE INDEX goal_step_metrics_project_goal ON goal_step_metrics (project_id, goal_id);
