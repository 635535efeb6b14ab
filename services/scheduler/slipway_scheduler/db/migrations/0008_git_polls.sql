-- Polling the remotes of deployed applications for new commits (a repository that has no git
-- webhook endpoint sending its pushes): one row per (organization, repository, branch) with
-- the last head seen, when it is next polled (re-armed after each poll, further after each
-- failure) and the last failure, readable as it is; and the scheduler's copy of the
-- organizations' git credentials (sealed with the transport key, as the catalog sent them).
SET LOCAL lock_timeout = '5s';

CREATE TABLE git_polls (
    organization_id uuid        NOT NULL,
    repository_key  text        NOT NULL,
    branch          text        NOT NULL,
    -- the URL ls-remote asks (one application's; every URL of one key is one repository)
    repository_url  text        NOT NULL,
    last_commit     text,
    next_poll_at    timestamptz NOT NULL,
    polled_at       timestamptz,
    -- consecutive failed polls (0 after a success): the backoff's exponent
    failures        integer     NOT NULL DEFAULT 0,
    last_error      text,
    last_error_at   timestamptz,
    -- the last push a git webhook delivered for this branch: polling waits while pushes come
    pushed_at       timestamptz,
    PRIMARY KEY (organization_id, repository_key, branch)
);
CREATE INDEX git_polls_due ON git_polls (next_poll_at);

CREATE TABLE git_credentials (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    kind            text        NOT NULL,
    host            text,
    secret_sealed   text,
    known_hosts     text,
    deleted         boolean     NOT NULL,
    version         bigint      NOT NULL
);
CREATE INDEX git_credentials_organization ON git_credentials (organization_id) WHERE NOT deleted;

ALTER TABLE git_polls ENABLE ROW LEVEL SECURITY;
ALTER TABLE git_polls FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON git_polls
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE git_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE git_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON git_credentials
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
