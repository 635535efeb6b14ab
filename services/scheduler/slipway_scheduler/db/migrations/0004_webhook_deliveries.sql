-- Deliveries of the outgoing webhooks, and the projection of the catalog they are filtered
-- on (project names, environment modes).
--
-- A delivery row is written in the inbox transaction of the deployer event it reports (one per
-- webhook and event: the unique key makes a redelivered event write nothing). The delivery
-- loop claims due rows with FOR UPDATE SKIP LOCKED and moves next_attempt_at forward by a lease
-- before it sends, so no two processes send one attempt at once; every attempt is recorded.
SET LOCAL lock_timeout = '5s';

CREATE TABLE projects (
    project_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    version         bigint      NOT NULL
);

CREATE TABLE environments (
    environment_id  uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    project_id      uuid        NOT NULL,
    name            text        NOT NULL,
    mode            text        NOT NULL,
    version         bigint      NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    webhook_id      uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL,
    event_id        uuid        NOT NULL,
    event           text        NOT NULL,
    body            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'PENDING'
                                CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- failed attempts since retry_from: the exponent of the back-off (a redeliver resets both)
    failures        integer     NOT NULL DEFAULT 0,
    retry_from      timestamptz NOT NULL,
    next_attempt_at timestamptz,
    last_response_code integer,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_newest ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
    id              bigserial   PRIMARY KEY,
    delivery_id     uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL,
    number          integer     NOT NULL,
    attempted_at    timestamptz NOT NULL,
    signature       text        NOT NULL,
    response_code   integer,
    response_body   text,
    duration_ms     integer     NOT NULL,
    error           text,
    next_attempt_at timestamptz
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, number);

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON projects
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE environments ENABLE ROW LEVEL SECURITY;
ALTER TABLE environments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON environments
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhook_deliveries
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE webhook_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON webhook_attempts
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
