-- Safe retries (slipway_libs.idempotency): the first answer to a POST that carried an
-- Idempotency-Key, per organization, principal and key, kept 24 hours. The row is written in the
-- request's own transaction, with its effect: both commit, or neither.
CREATE TABLE idempotency_keys (
    organization_id uuid,        -- none: a request outside any organization (sign-up)
    principal       text        NOT NULL,
    key             text        NOT NULL,
    fingerprint     text        NOT NULL,  -- SHA-256 of method, path, query and JSON body
    status          integer,     -- set before commit: no other session sees it empty
    body            jsonb,
    headers         jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_unique UNIQUE NULLS NOT DISTINCT (organization_id, principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON idempotency_keys
    USING (organization_id IS NULL OR tenant_visible(organization_id))
    WITH CHECK (organization_id IS NULL OR tenant_visible(organization_id));
