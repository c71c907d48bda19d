-- Every unique key of a table that holds a project's data includes project_id, so that Citus can
-- distribute the table by project (see postgres/citus.rs). Task ids stay unique: they are
-- generated, like every id.
ALTER TABLE tasks DROP CONSTRAINT tasks_pkey, ADD CONSTRAINT tasks_pkey PRIMARY KEY (project_id, id);
DROP INDEX tasks_project;
