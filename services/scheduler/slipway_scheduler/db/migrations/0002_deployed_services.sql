-- What the deployer last said of each service (deployer.ServiceStatusChanged): a cron job's
-- timer is armed only while the job is deployed, as the deployer runs only a deployed job.
SET LOCAL lock_timeout = '5s';

CREATE TABLE deployed_services (
    service_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    deployed        boolean     NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE deployed_services ENABLE ROW LEVEL SECURITY;
ALTER TABLE deployed_services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON deployed_services
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
