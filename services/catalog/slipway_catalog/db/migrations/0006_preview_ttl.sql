-- A deployment rule's preview time to live: a pull request's preview environment cloned from
-- this environment is deleted that many hours after it opened (NULL: the platform's default).
SET LOCAL lock_timeout = '5s';

ALTER TABLE deployment_rules
    ADD COLUMN preview_ttl_hours integer CHECK (preview_ttl_hours BETWEEN 1 AND 8760);
