-- `q` is always asked of one stream: one GIN index on (stream, trigrams) answers both conditions
-- at once, instead of the text-only trigram index that visited every stream's matches (a common
-- word in a million lines took ~0.5 s for one stream's 10,000; this index ~50 ms).
-- btree_gin (trusted, like pg_trgm: the database owner may create it) indexes the uuid in GIN.
SET LOCAL lock_timeout = '5s';

CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX log_lines_stream_text_trgm ON log_lines USING gin (stream_id, text gin_trgm_ops);
DROP INDEX log_lines_text_trgm;
