-- `q` from search chunks (slipway_logs.domain.lines.Chunk) instead of a trigram index over every
-- line: the per-line GIN index cost ~20 µs of PostgreSQL CPU per stored line, 85 % of storing
-- it (bench/results/logs.md), and kept ingest below 20,000 lines/s. A chunk holds the distinct
-- words of the consecutive lines of one stream stored by one ingest batch, with their cursor
-- range: PostgreSQL extracts the trigrams of each distinct word once per chunk, not those of
-- every word of every line.
-- Partitioned like log_lines (same days, same storage time as its lines: dropped and deleted
-- with them).
SET LOCAL lock_timeout = '5s';

CREATE TABLE log_search (
    stream_id       uuid        NOT NULL,
    first_cursor    bigint      NOT NULL,
    last_cursor     bigint      NOT NULL CHECK (last_cursor >= first_cursor),
    stored_at       timestamptz NOT NULL DEFAULT now(),
    organization_id uuid        NOT NULL,
    words           text        NOT NULL,
    PRIMARY KEY (stream_id, first_cursor, stored_at)
) PARTITION BY RANGE (stored_at);

-- a sibling for every day log_lines has (same bounds)
DO $$
DECLARE
    child record;
BEGIN
    FOR child IN
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'log_lines'::regclass
    LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF log_search %s',
            'log_search_' || substr(child.relname, length('log_lines_') + 1),
            child.bound
        );
    END LOOP;
END
$$;

-- the lines stored before this: a chunk per line, holding its parts' whole searched text (which
-- holds every word of it)
INSERT INTO log_search (stream_id, first_cursor, last_cursor, stored_at, organization_id, words)
SELECT stream_id, cursor, cursor, stored_at, organization_id,
       string_agg(overlap || text, E'\n' ORDER BY part)
FROM log_lines
GROUP BY stream_id, cursor, stored_at, organization_id;

CREATE INDEX log_search_trgm ON log_search USING gin (stream_id, words gin_trgm_ops);
-- the per-organization retention deletes an organization's oldest chunks with its lines
CREATE INDEX log_search_organization ON log_search (organization_id, stored_at);
DROP INDEX log_lines_stream_search_trgm;

ALTER TABLE log_search ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_search FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON log_search
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));

-- a day's partition of both tables, each created when missing (true: log_lines' was)
CREATE OR REPLACE FUNCTION logs_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    suffix text := to_char(day, 'YYYYMMDD');
    created boolean := false;
BEGIN
    IF to_regclass('log_lines_' || suffix) IS NOT NULL
       AND to_regclass('log_search_' || suffix) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('slipway_logs.partitions'));
    IF to_regclass('log_lines_' || suffix) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF log_lines FOR VALUES FROM (%L) TO (%L)',
            'log_lines_' || suffix,
            (day::timestamp AT TIME ZONE 'UTC'),
            ((day + 1)::timestamp AT TIME ZONE 'UTC')
        );
        created := true;
    END IF;
    IF to_regclass('log_search_' || suffix) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF log_search FOR VALUES FROM (%L) TO (%L)',
            'log_search_' || suffix,
            (day::timestamp AT TIME ZONE 'UTC'),
            ((day + 1)::timestamp AT TIME ZONE 'UTC')
        );
    END IF;
    RETURN created;
END
$$;
