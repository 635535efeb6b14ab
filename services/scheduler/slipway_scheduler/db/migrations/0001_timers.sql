-- The scheduler's projection of the catalog (cron jobs, deployment rules, environments) and
-- its durable timers. A timer row is claimed with FOR UPDATE SKIP LOCKED by any scheduler
-- process; firing writes the command to the outbox and moves next_fire_at forward in the same
-- transaction (slipway_scheduler.db.queries), so a timer fires once per due instant.
SET LOCAL lock_timeout = '5s';

-- Full-state projection rows: newer version wins; a tombstone (deleted) stays a tombstone.
CREATE TABLE cron_jobs (
    service_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    environment_id  uuid        NOT NULL,
    schedule        text        NOT NULL,
    timezone        text        NOT NULL,
    deleted         boolean     NOT NULL DEFAULT false,
    version         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cron_jobs_environment ON cron_jobs (environment_id);

CREATE TABLE deployment_rules (
    environment_id  uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    auto_stop       boolean     NOT NULL,
    auto_start      boolean     NOT NULL,
    timezone        text        NOT NULL,
    weekdays        text[]      NOT NULL,
    start_time      text,
    stop_time       text,
    version         bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Environments deleted in the catalog: their rules and jobs never fire again, whichever of
-- the events arrives first.
CREATE TABLE deleted_environments (
    environment_id  uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    version         bigint      NOT NULL
);

-- One row per (kind, target): what fires next, when, and how the last firing went.
CREATE TABLE timers (
    kind            text        NOT NULL CHECK (kind IN ('cron', 'env_stop', 'env_start')),
    target_id       uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    environment_id  uuid        NOT NULL,
    expression      text        NOT NULL,
    timezone        text        NOT NULL,
    next_fire_at    timestamptz NOT NULL,
    last_scheduled_at timestamptz,
    last_fired_at   timestamptz,
    last_lateness_ms bigint,
    fired           bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, target_id)
);
CREATE INDEX timers_due ON timers (next_fire_at);
CREATE INDEX timers_environment ON timers (environment_id);

ALTER TABLE cron_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON cron_jobs
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE deployment_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE deployment_rules FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON deployment_rules
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE deleted_environments ENABLE ROW LEVEL SECURITY;
ALTER TABLE deleted_environments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON deleted_environments
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE timers ENABLE ROW LEVEL SECURITY;
ALTER TABLE timers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON timers
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
