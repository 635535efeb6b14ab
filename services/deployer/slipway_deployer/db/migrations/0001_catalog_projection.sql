-- The deployer's own copy of the catalog, kept from the catalog's full-state events (no calls to
-- the catalog). Each row holds the version of the event that wrote it: an event applies only when
-- it is newer, so redelivered or reordered events change nothing. Deletes are kept as tombstones.
CREATE TABLE catalog_clusters (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    name            text    NOT NULL,
    kind            text    NOT NULL,
    api_url         text,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);

CREATE TABLE catalog_projects (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    name            text    NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);

CREATE TABLE catalog_environments (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    project_id      uuid    NOT NULL,
    name            text    NOT NULL,
    mode            text    NOT NULL,
    cluster_id      uuid    NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);

CREATE TABLE catalog_services (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    project_id      uuid    NOT NULL,
    environment_id  uuid    NOT NULL,
    name            text    NOT NULL,
    kind            text    NOT NULL,
    spec            jsonb   NOT NULL,
    stage_id        uuid,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);
CREATE INDEX catalog_services_environment ON catalog_services (environment_id) WHERE NOT deleted;

CREATE TABLE catalog_stages (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    environment_id  uuid    NOT NULL,
    name            text    NOT NULL,
    position        integer NOT NULL,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);
CREATE INDEX catalog_stages_environment ON catalog_stages (environment_id) WHERE NOT deleted;

CREATE TABLE catalog_rules (
    environment_id  uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    rule            jsonb   NOT NULL,
    version         bigint  NOT NULL
);

CREATE TABLE catalog_variables (
    id              uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    project_id      uuid    NOT NULL,
    environment_id  uuid,
    scope           text    NOT NULL,
    parent_id       uuid    NOT NULL,
    key             text    NOT NULL,
    kind            text    NOT NULL,
    value           text,
    value_sealed    text,
    is_secret       boolean NOT NULL DEFAULT false,
    mount_path      text,
    deleted         boolean NOT NULL DEFAULT false,
    version         bigint  NOT NULL
);
CREATE INDEX catalog_variables_project ON catalog_variables (project_id) WHERE NOT deleted;
