-- The trace of the request that asked for a deployment: its execution continues it, so one trace
-- goes from the API call through builds to the final status event.
ALTER TABLE deployments ADD COLUMN trace_carrier jsonb;
