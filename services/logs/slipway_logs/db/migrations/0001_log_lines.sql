-- Log lines, partitioned by the day they were stored (UTC; see slipway_logs.domain.partitions),
-- each with a cursor strictly increasing within its stream (a deployment's lines, a service's
-- live lines), assigned under the stream's counter row lock in the ingest transaction: lines
-- commit in cursor order, and a commit notifies `logs_appended` (slipway_logs.db.queries).
SET LOCAL lock_timeout = '5s';

-- trigram indexes for `q` (pg_trgm is a trusted extension: the database owner may create it)
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- One row per stream: its cursor counter (never reset, even when its lines expire: a cursor is
-- never given twice) and its tenant.
CREATE TABLE log_streams (
    stream_id       uuid        PRIMARY KEY,
    stream_kind     text        NOT NULL CHECK (stream_kind IN ('deployment', 'service')),
    organization_id uuid        NOT NULL,
    environment_id  uuid,
    last_cursor     bigint      NOT NULL CHECK (last_cursor >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- A line over 16 KiB is stored as parts 1..parts sharing its cursor.
CREATE TABLE log_lines (
    stream_id       uuid        NOT NULL,
    cursor          bigint      NOT NULL,
    part            integer     NOT NULL DEFAULT 1 CHECK (part >= 1),
    parts           integer     NOT NULL DEFAULT 1 CHECK (parts >= part),
    stored_at       timestamptz NOT NULL DEFAULT now(),
    at              timestamptz NOT NULL,
    organization_id uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('build', 'deploy', 'live')),
    stream          text        NOT NULL CHECK (stream IN ('stdout', 'stderr', 'system')),
    service_id      uuid,
    build_id        uuid,
    text            text        NOT NULL,
    -- pages, tails and followers read a stream by cursor range
    PRIMARY KEY (stream_id, cursor, part, stored_at)
) PARTITION BY RANGE (stored_at);

-- `q`: ILIKE '%text%' answered from the trigram index (every partition gets its own)
CREATE INDEX log_lines_text_trgm ON log_lines USING gin (text gin_trgm_ops);
-- the per-organization retention job deletes an organization's oldest lines
CREATE INDEX log_lines_organization ON log_lines (organization_id, stored_at);

-- The day's partition, created when missing (true) — by the worker days ahead, and by the
-- ingest itself should the worker not have run. One creator at a time.
CREATE FUNCTION logs_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    partition text := 'log_lines_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(partition) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('slipway_logs.partitions'));
    IF to_regclass(partition) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF log_lines FOR VALUES FROM (%L) TO (%L)',
        partition,
        (day::timestamp AT TIME ZONE 'UTC'),
        ((day + 1)::timestamp AT TIME ZONE 'UTC')
    );
    RETURN true;
END
$$;

SELECT logs_ensure_partition((now() AT TIME ZONE 'UTC')::date);

-- Organizations that keep their lines for fewer days than the installation's retention.
CREATE TABLE organization_retention (
    organization_id uuid        PRIMARY KEY,
    days            integer     NOT NULL CHECK (days >= 1),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE log_streams ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_streams FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON log_streams
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE log_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_lines FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON log_lines
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

ALTER TABLE organization_retention ENABLE ROW LEVEL SECURITY;
ALTER TABLE organization_retention FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON organization_retention
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
