-- What is new in git: the latest commit pushed to each application's branch, as the
-- scheduler heard it from a git push (scheduler.NewCommitAvailable). A service whose last
-- deployed build is another commit, built before that push arrived, is OUT_OF_DATE with
-- "new commit available".
SET LOCAL lock_timeout = '5s';

CREATE TABLE service_heads (
    service_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    environment_id  uuid        NOT NULL,
    branch          text        NOT NULL,
    commit          text        NOT NULL,
    pushed_at       timestamptz NOT NULL
);
CREATE INDEX service_heads_environment ON service_heads (environment_id);

ALTER TABLE service_heads ENABLE ROW LEVEL SECURITY;
ALTER TABLE service_heads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON service_heads
    USING (tenant_visible(organization_id)) WITH CHECK (tenant_visible(organization_id));
