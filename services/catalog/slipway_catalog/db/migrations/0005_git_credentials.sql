-- An organization's credentials for private git repositories (issue 13): an https token or an
-- SSH private key, sealed at rest bound to the row's id (never stored or answered in clear).
SET LOCAL lock_timeout = '5s';

CREATE TABLE git_credentials (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations (id),
    name            text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('token', 'ssh_key')),
    host            text,
    secret_sealed   bytea,
    known_hosts     text,
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX git_credentials_name
    ON git_credentials (organization_id, lower(name)) WHERE deleted_at IS NULL;

ALTER TABLE git_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE git_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON git_credentials
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
