-- Deployment requests and deployments are one row: a request is a deployment still QUEUED.
-- ``seq`` is the queue order. At most one deployment per environment is running (ONGOING or
-- CANCELING): the partial unique index makes that a fact of the database, not of the worker.
CREATE TABLE deployments (
    id               uuid        PRIMARY KEY,
    seq              bigserial   NOT NULL UNIQUE,
    organization_id  uuid        NOT NULL,
    project_id       uuid        NOT NULL,
    environment_id   uuid        NOT NULL,
    action           text        NOT NULL,  -- DEPLOY | STOP | RESTART | DELETE
    service_ids      uuid[]      NOT NULL DEFAULT '{}',  -- empty: the whole environment
    version          text,                  -- a commit or image tag asked for (one service)
    trigger          text        NOT NULL,  -- user | git_push | schedule | preview | rollback
    rollback_of      uuid,
    requested_by     jsonb,                 -- the actor: type, id, name, origin
    status           text        NOT NULL,  -- QUEUED ONGOING CANCELING SUCCESS ERROR CANCELED
    reason           text,
    message          text,
    snapshot         jsonb,                 -- the configuration it deployed
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    heartbeat_at     timestamptz
);
CREATE UNIQUE INDEX deployments_one_running ON deployments (environment_id)
    WHERE status IN ('ONGOING', 'CANCELING');
CREATE INDEX deployments_queued ON deployments (seq) WHERE status = 'QUEUED';
CREATE INDEX deployments_environment ON deployments (environment_id, seq DESC);

CREATE TABLE deployment_stages (
    deployment_id uuid    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    position      integer NOT NULL,
    stage_id      uuid,
    name          text    NOT NULL,
    status        text    NOT NULL,  -- QUEUED ONGOING DONE ERROR SKIPPED CANCELED
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (deployment_id, position)
);

-- One service's part in a deployment: its build, then its deployment step.
CREATE TABLE deployment_services (
    deployment_id uuid    NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    service_id    uuid    NOT NULL,
    position      integer NOT NULL,  -- its stage
    name          text    NOT NULL,
    kind          text    NOT NULL,
    status        text    NOT NULL,  -- QUEUED BUILDING DEPLOYING DONE ERROR SKIPPED CANCELED
    build_id      uuid    UNIQUE,
    build_status  text,              -- QUEUED STARTED SUCCEEDED FAILED CANCELED
    image         text,
    commit        text,
    reason        text,
    message       text,
    steps         jsonb   NOT NULL DEFAULT '{}',  -- seconds per step: build, deploy, job
    started_at    timestamptz,
    finished_at   timestamptz,
    PRIMARY KEY (deployment_id, service_id)
);

CREATE TABLE environment_status (
    environment_id     uuid        PRIMARY KEY,
    organization_id    uuid        NOT NULL,
    state              text        NOT NULL,
    last_action        text,
    last_deployment_id uuid,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service_status (
    service_id         uuid        PRIMARY KEY,
    environment_id     uuid        NOT NULL,
    organization_id    uuid        NOT NULL,
    state              text        NOT NULL,
    last_action        text,
    running_status     text,
    urls               jsonb       NOT NULL DEFAULT '[]',
    message            text,
    deployed_config    text,       -- digest of the configuration last deployed (freshness)
    deployed_image     text,
    last_deployment_id uuid,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_status_environment ON service_status (environment_id);

-- Databases this deployer runs: how to reach them. The password is sealed at rest.
CREATE TABLE database_instances (
    service_id      uuid    PRIMARY KEY,
    organization_id uuid    NOT NULL,
    environment_id  uuid    NOT NULL,
    engine          text    NOT NULL,
    host            text    NOT NULL,
    port            integer NOT NULL,
    db_user         text    NOT NULL,
    db_name         text    NOT NULL,
    password_sealed bytea   NOT NULL,
    version         bigint  NOT NULL DEFAULT 1,
    deleted         boolean NOT NULL DEFAULT false
);

-- Variables written by lifecycle jobs (their output file), for the services of later stages.
CREATE TABLE job_outputs (
    environment_id uuid        NOT NULL,
    service_id     uuid        NOT NULL,
    outputs_sealed bytea       NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (environment_id, service_id)
);
