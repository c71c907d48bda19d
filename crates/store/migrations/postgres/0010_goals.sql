-- Goals a project's admins define: the current version of each, its steps and their metrics.
-- Kept in step with migrations/sqlite: the same tables, columns and indexes.
-- All three hold a project's data and are distributed by project on Citus (postgres/citus.rs).

CREATE TABLE goals (
    id               text COLLATE "C" NOT NULL,
    project_id       text COLLATE "C" NOT NULL,
    organisation     text COLLATE "C" NOT NULL,
    name             text COLLATE "C" NOT NULL,
    version          text COLLATE "C" NOT NULL,
    description      text COLLATE "C",
    reference_id     text COLLATE "C",
    created_at       timestamptz NOT NULL,
    last_changed     timestamptz NOT NULL,
    created_by       text COLLATE "C" NOT NULL,
    last_changed_by  text COLLATE "C" NOT NULL,
    CONSTRAINT goals_pkey PRIMARY KEY (project_id, id)
);

CREATE TABLE goal_steps (
    id            text COLLATE "C" NOT NULL,
    project_id    text COLLATE "C" NOT NULL,
    organisation  text COLLATE "C" NOT NULL,
    goal_id       text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    version       text COLLATE "C" NOT NULL,
    description   text COLLATE "C",
    step_order    bigint NOT NULL,
    text          text COLLATE "C",
    step_type     text COLLATE "C" NOT NULL,
    -- Where the step stands in its goal's definition.
    position      bigint NOT NULL,
    CONSTRAINT goal_steps_pkey PRIMARY KEY (project_id, id)
);

CREATE TABLE goal_step_metrics (
    id            text COLLATE "C" NOT NULL,
    project_id    text COLLATE "C" NOT NULL,
    organisation  text COLLATE "C" NOT NULL,
    goal_id       text COLLATE "C" NOT NULL,
    goal_step_id  text COLLATE "C" NOT NULL,
    name          text COLLATE "C" NOT NULL,
    version       text COLLATE "C" NOT NULL,
    description   text COLLATE "C",
    value         float8 NOT NULL,
    metric_type   text COLLATE "C" NOT NULL,
    -- Where the metric stands in its step's definition.
    position      bigint NOT NULL,
    CONSTRAINT goal_step_metrics_pkey PRIMARY KEY (project_id, id)
);
CREATE INDEX goal_steps_project_goal ON goal_steps (project_id, goal_id);
CREATE INDEX goal_step_metrics_project_goal ON goal_step_metrics (project_id, goal_id);
