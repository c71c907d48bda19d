-- Indexes for OData reads, which span every project a caller may read and page by keyset in the
-- order asked for. Without them, a page in time order or a grouping by intent sorts every row of
-- those projects; with them, both are read in index order, the project checked from the index.
-- Kept in step with migrations/postgres: the same index names and columns.

CREATE INDEX records_timestamp ON records (timestamp, id, project_id);
CREATE INDEX records_intent ON records (intent, project_id);
