-- The queue is in the order builds were requested, not received: the deployer's commands are
-- keyed by build, so they travel on different partitions and a batch fetched together can hold
-- a later request before an earlier one.
ALTER TABLE builds ADD COLUMN requested_at timestamptz;
UPDATE builds SET requested_at = queued_at;
ALTER TABLE builds ALTER COLUMN requested_at SET NOT NULL,
                   ALTER COLUMN requested_at SET DEFAULT clock_timestamp();
DROP INDEX builds_queue;
CREATE INDEX builds_queue ON builds (requested_at, id) WHERE status = 'QUEUED';
