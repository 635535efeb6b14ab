-- Builds: one row per build command, from QUEUED to a final status. The queue is the rows in
-- QUEUED, oldest first; RUNNING rows belong to one worker process (host, pid) and name the
-- process group of their build tools, so that a worker coming back after a crash can stop
-- what its dead predecessor left running and fail the build cleanly.
CREATE TABLE builds (
    id                uuid        PRIMARY KEY,
    organization_id   uuid        NOT NULL,
    environment_id    uuid,
    service_id        uuid        NOT NULL,
    deployment_id     uuid,
    source            jsonb       NOT NULL,
    build_args        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    image_repository  text        NOT NULL,
    git_token_sealed  text,
    status            text        NOT NULL DEFAULT 'QUEUED'
                                  CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED',
                                                    'CANCELED')),
    cancel_requested  boolean     NOT NULL DEFAULT false,
    commit            text,
    image             text,
    digest            text,
    skipped           boolean,
    reason            text,
    message           text,
    worker_host       text,
    worker_pid        integer,
    pgid              integer,
    queued_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at        timestamptz,
    finished_at       timestamptz
);
CREATE INDEX builds_queue ON builds (queued_at) WHERE status = 'QUEUED';
CREATE INDEX builds_running ON builds (worker_host) WHERE status = 'RUNNING';
