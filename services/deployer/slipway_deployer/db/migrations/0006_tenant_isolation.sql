-- Every tenant's rows are visible only to requests of that tenant (slipway_libs.tenancy): an
-- API query that forgets its organization filter still cannot reach another tenant's rows. The
-- worker and the consumers bind no organization and see every row. FORCE: the policies hold for
-- the table owner, the role the deployer connects as.
SET LOCAL lock_timeout = '5s';

ALTER TABLE catalog_clusters ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_clusters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_clusters
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE catalog_projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_projects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_projects
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE catalog_environments ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_environments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_environments
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE catalog_services ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_services
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE catalog_stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_stages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_stages
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE catalog_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_rules
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE catalog_variables ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_variables FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_variables
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE deployments ENABLE ROW LEVEL SECURITY;
ALTER TABLE deployments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON deployments
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE environment_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE environment_status FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON environment_status
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE service_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_status FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON service_status
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE database_instances ENABLE ROW LEVEL SECURITY;
ALTER TABLE database_instances FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON database_instances
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE job_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON job_runs
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
