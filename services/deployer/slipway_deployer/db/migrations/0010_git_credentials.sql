-- The deployer's copy of the organizations' git credentials (catalog.GitCredentialChanged): the
-- secret stays sealed with the transport key; a build request seals it again for that build.
SET LOCAL lock_timeout = '5s';

CREATE TABLE catalog_git_credentials (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    name            text    NOT NULL,
    kind            text    NOT NULL,
    host            text,
    secret_sealed   text,
    known_hosts     text,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);
CREATE INDEX catalog_git_credentials_org ON catalog_git_credentials (organization_id)
    WHERE NOT deleted;

ALTER TABLE catalog_git_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE catalog_git_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON catalog_git_credentials
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
