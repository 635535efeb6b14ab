-- Every tenant's rows are visible only to requests of that tenant (slipway_libs.tenancy): a
-- query that forgets its organization filter still cannot read or write another tenant's rows.
-- FORCE: the policies hold for the table owner, the role the catalog connects as.
SET LOCAL lock_timeout = '5s';

ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON organizations USING (tenant_visible(id)) WITH CHECK (tenant_visible(id));

ALTER TABLE clusters ENABLE ROW LEVEL SECURITY;
ALTER TABLE clusters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON clusters
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON projects
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE environments ENABLE ROW LEVEL SECURITY;
ALTER TABLE environments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON environments
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE stages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON stages
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE services ENABLE ROW LEVEL SECURITY;
ALTER TABLE services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON services
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE variables ENABLE ROW LEVEL SECURITY;
ALTER TABLE variables FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON variables
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE deployment_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE deployment_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON deployment_rules
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE database_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE database_connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON database_connections
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
