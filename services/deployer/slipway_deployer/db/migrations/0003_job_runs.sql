-- Runs of cron (and lifecycle) jobs outside deployments: forced through the API or fired by the
-- scheduler. A scheduled run happens once per (service, scheduled_at), however often asked.
CREATE TABLE job_runs (
    id              uuid        PRIMARY KEY,
    seq             bigserial   NOT NULL UNIQUE,
    service_id      uuid        NOT NULL,
    environment_id  uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    trigger         text        NOT NULL,  -- user | schedule
    scheduled_at    timestamptz,
    requested_by    jsonb,
    status          text        NOT NULL,  -- QUEUED RUNNING SUCCEEDED FAILED SKIPPED
    exit_code       integer,
    message         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE UNIQUE INDEX job_runs_once ON job_runs (service_id, scheduled_at)
    WHERE scheduled_at IS NOT NULL;
CREATE INDEX job_runs_queued ON job_runs (seq) WHERE status = 'QUEUED';
CREATE INDEX job_runs_service ON job_runs (service_id, seq DESC);
