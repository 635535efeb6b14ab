-- Incoming git webhooks: an organization's endpoints (the secret sealed at rest, the row id as
-- associated data), the deliveries they received (one row per (endpoint, delivery id): a
-- redelivered delivery writes nothing and triggers nothing again), and the projection of the
-- catalog's applications a push is matched against (repository key, branch, auto_deploy).
SET LOCAL lock_timeout = '5s';

CREATE TABLE git_webhooks (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    secret_sealed   bytea       NOT NULL,
    description     text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX git_webhooks_organization ON git_webhooks (organization_id, created_at);

CREATE TABLE git_deliveries (
    id              uuid        PRIMARY KEY,
    git_webhook_id  uuid        NOT NULL REFERENCES git_webhooks (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL,
    provider        text        NOT NULL CHECK (provider IN ('github', 'gitlab', 'gitea')),
    delivery_id     text        NOT NULL,
    event           text        NOT NULL,
    result          text        NOT NULL,
    branch          text,
    commit          text,
    -- what the delivery triggered: [{"service_id", "environment_id", "commit"}]
    triggered       jsonb       NOT NULL DEFAULT '[]',
    received_at     timestamptz NOT NULL,
    UNIQUE (git_webhook_id, delivery_id)
);
CREATE INDEX git_deliveries_newest ON git_deliveries (git_webhook_id, received_at DESC, id DESC);

CREATE TABLE applications (
    service_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    environment_id  uuid        NOT NULL,
    repository_url  text        NOT NULL,
    repository_key  text        NOT NULL,
    branch          text        NOT NULL,
    auto_deploy     boolean     NOT NULL,
    deleted         boolean     NOT NULL DEFAULT false,
    version         bigint      NOT NULL
);
CREATE INDEX applications_repository ON applications (organization_id, repository_key, branch)
    WHERE NOT deleted AND auto_deploy;

ALTER TABLE git_webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE git_webhooks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON git_webhooks
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE git_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE git_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON git_deliveries
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE applications ENABLE ROW LEVEL SECURITY;
ALTER TABLE applications FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON applications
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
