-- Pull requests' preview environments: the scheduler's bookkeeping of each preview (which
-- blueprint environment, which pull request, the environment id it chose for the catalog's
-- clone, the head it was last asked to build, until when it lives), the projection of the
-- deployment rules' auto_preview, and the applications' path filters.
SET LOCAL lock_timeout = '5s';

CREATE TABLE previews (
    id                  uuid        PRIMARY KEY,
    organization_id     uuid        NOT NULL,
    blueprint_id        uuid        NOT NULL,
    repository_key      text        NOT NULL,
    pull_request        integer     NOT NULL,
    -- the preview environment: chosen here, created by the catalog under this id
    environment_id      uuid        NOT NULL UNIQUE,
    branch              text        NOT NULL,
    commit              text        NOT NULL,
    state               text        NOT NULL CHECK (state IN ('OPEN', 'CLOSED', 'EXPIRED')),
    expires_at          timestamptz NOT NULL,
    opened_at           timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
-- one open preview per (blueprint, pull request); closed ones stay as history
CREATE UNIQUE INDEX previews_open ON previews (blueprint_id, repository_key, pull_request)
    WHERE state = 'OPEN';
CREATE INDEX previews_expiring ON previews (expires_at) WHERE state = 'OPEN';

CREATE TABLE preview_rules (
    environment_id      uuid        PRIMARY KEY,
    organization_id     uuid        NOT NULL,
    auto_preview        boolean     NOT NULL,
    version             bigint      NOT NULL
);

-- glob patterns: a push deploys the application only when a changed file matches one (none:
-- every push)
ALTER TABLE applications ADD COLUMN path_filters text[] NOT NULL DEFAULT '{}';
-- a push is matched against every live application of its repository and branch (those
-- with auto_deploy off are told a new commit is available), and a pull request against its
-- base branch
CREATE INDEX applications_branch ON applications (organization_id, repository_key, branch)
    WHERE NOT deleted;

ALTER TABLE previews ENABLE ROW LEVEL SECURITY;
ALTER TABLE previews FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON previews
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE preview_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE preview_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON preview_rules
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
