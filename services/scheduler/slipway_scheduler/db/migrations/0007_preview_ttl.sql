-- The rules' preview time to live (hours; NULL: the scheduler's default), projected with
-- auto_preview: a preview expires that long after it opened.
SET LOCAL lock_timeout = '5s';

ALTER TABLE preview_rules ADD COLUMN preview_ttl_hours integer;
