-- Outgoing webhooks of an organization. The signing secret is sealed at rest
-- (slipway_libs.crypto.Sealer, the row id as associated data): shown once at creation, never
-- read back through the API.
SET LOCAL lock_timeout = '5s';

CREATE TABLE webhooks (
    id                uuid        PRIMARY KEY,
    organization_id   uuid        NOT NULL,
    url               text        NOT NULL,
    secret_sealed     bytea       NOT NULL,
    events            text[]      NOT NULL,
    project_pattern   text,
    environment_modes text[]      NOT NULL DEFAULT '{}',
    format            text        NOT NULL CHECK (format IN ('json', 'slack')),
    description       text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_organization ON webhooks (organization_id, created_at);

ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhooks
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
