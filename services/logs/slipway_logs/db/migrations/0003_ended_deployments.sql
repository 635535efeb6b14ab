-- Deployments that have ended (from the deployer's deployer.deployment.v1 events): a follower of
-- a deployment's lines is told `end` once its deployment is here (slipway_logs.adapters.line_feed).
SET LOCAL lock_timeout = '5s';

CREATE TABLE ended_deployments (
    deployment_id   uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('SUCCESS', 'ERROR', 'CANCELED')),
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE ended_deployments ENABLE ROW LEVEL SECURITY;
ALTER TABLE ended_deployments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON ended_deployments
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
