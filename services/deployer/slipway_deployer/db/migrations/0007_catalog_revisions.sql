-- How far the projection of each project has come: the highest catalog revision applied (the
-- ``revision`` of catalog.project.v1 events), written in the transaction that applies the event,
-- so a request that carries a revision (read-your-writes) is served once the projection has it.
SET LOCAL lock_timeout = '5s';

CREATE TABLE catalog_revisions (
    project_id      uuid   PRIMARY KEY,
    organization_id uuid   NOT NULL,
    revision        bigint NOT NULL
);

ALTER TABLE catalog_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_revisions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_revisions
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
