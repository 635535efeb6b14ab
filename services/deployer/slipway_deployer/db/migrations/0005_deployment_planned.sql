-- A claim only takes a request (ONGOING, started_at): its execution then plans it (snapshot,
-- stages, service runs) in a transaction of its own, so the worker's claims stay one statement
-- however many deployments start at once. A deployment resumed unplanned is planned then.
ALTER TABLE deployments ADD COLUMN planned_at timestamptz;
UPDATE deployments SET planned_at = started_at WHERE started_at IS NOT NULL;
