-- Each project's revision: incremented in the transaction of every change the catalog makes
-- inside the project, and carried by every catalog.project.v1 event of it, so that a reader
-- (the deployer's projection) can tell whether it has reached a write a caller just made. Its
-- own table: the bump takes a row lock that must not meet the locks taken on ``projects``.
SET LOCAL lock_timeout = '5s';

CREATE TABLE project_revisions (
    project_id      uuid   PRIMARY KEY,
    organization_id uuid   NOT NULL,
    revision        bigint NOT NULL
);

ALTER TABLE project_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_revisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON project_revisions
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
