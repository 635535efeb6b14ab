-- Catalog: the desired state users configure. Every row carries the version of its last change
-- (one sequence: consumers of the events apply "newer wins"); deletes are soft, so that the
-- tombstone event has a version too.
CREATE SEQUENCE catalog_version;

CREATE TABLE organizations (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

CREATE TABLE clusters (
    id                  uuid        PRIMARY KEY,
    organization_id     uuid        NOT NULL REFERENCES organizations (id),
    name                text        NOT NULL,
    kind                text        NOT NULL CHECK (kind IN ('local', 'self_managed')),
    api_url             text,
    credentials_sealed  bytea,
    version             bigint      NOT NULL DEFAULT nextval('catalog_version'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE UNIQUE INDEX clusters_name ON clusters (organization_id, lower(name)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX clusters_one_local ON clusters (organization_id)
    WHERE kind = 'local' AND deleted_at IS NULL;

CREATE TABLE projects (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations (id),
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX projects_name ON projects (organization_id, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE environments (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations (id),
    project_id      uuid        NOT NULL REFERENCES projects (id),
    name            text        NOT NULL,
    mode            text        NOT NULL
                                CHECK (mode IN ('production', 'staging', 'development', 'preview')),
    cluster_id      uuid        NOT NULL REFERENCES clusters (id),
    cloned_from     uuid,
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX environments_name ON environments (project_id, lower(name))
    WHERE deleted_at IS NULL;

CREATE TABLE stages (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    environment_id  uuid        NOT NULL REFERENCES environments (id),
    name            text        NOT NULL,
    position        integer     NOT NULL,
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX stages_name ON stages (environment_id, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE services (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    project_id      uuid        NOT NULL REFERENCES projects (id),
    environment_id  uuid        NOT NULL REFERENCES environments (id),
    name            text        NOT NULL,
    kind            text        NOT NULL,
    spec            jsonb       NOT NULL,
    stage_id        uuid        REFERENCES stages (id),
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX services_name ON services (environment_id, name) WHERE deleted_at IS NULL;

CREATE TABLE variables (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    project_id      uuid        NOT NULL REFERENCES projects (id),
    environment_id  uuid        REFERENCES environments (id),
    service_id      uuid        REFERENCES services (id),
    scope           text        NOT NULL CHECK (scope IN ('project', 'environment', 'service')),
    parent_id       uuid        NOT NULL,
    key             text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('value', 'alias', 'override', 'file')),
    value           text,
    value_sealed    bytea,
    is_secret       boolean     NOT NULL DEFAULT false,
    mount_path      text,
    description     text        NOT NULL DEFAULT '',
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    CHECK (is_secret = (value_sealed IS NOT NULL)),
    CHECK (NOT is_secret OR value IS NULL)
);
CREATE UNIQUE INDEX variables_key ON variables (parent_id, key) WHERE deleted_at IS NULL;
CREATE INDEX variables_project ON variables (project_id) WHERE deleted_at IS NULL;

CREATE TABLE deployment_rules (
    environment_id  uuid        PRIMARY KEY REFERENCES environments (id),
    organization_id uuid        NOT NULL,
    auto_stop       boolean     NOT NULL DEFAULT false,
    auto_start      boolean     NOT NULL DEFAULT false,
    timezone        text        NOT NULL DEFAULT 'UTC',
    weekdays        text[]      NOT NULL DEFAULT '{}',
    start_time      text,
    stop_time       text,
    auto_preview    boolean     NOT NULL DEFAULT false,
    version         bigint      NOT NULL DEFAULT nextval('catalog_version'),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
