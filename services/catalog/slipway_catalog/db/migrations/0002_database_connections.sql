-- Where each deployed database answers and how to log in, from the deployer's
-- DatabaseConnectionChanged events (consumer group catalog.deployer): the built-in variables
-- SLIPWAY_<NAME>_HOST, _PORT, _USER, _DATABASE, _PASSWORD and _URL. One row per database
-- service, the newest version only; a deleted database keeps a tombstone (its version, so that
-- an older event cannot bring it back) without values. The password is sealed with the
-- catalog's at-rest key, the service id's bytes as associated data.
CREATE TABLE database_connections (
    service_id      uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    environment_id  uuid        NOT NULL,
    engine          text        NOT NULL,
    host            text,
    port            integer,
    "user"          text,
    database        text,
    password_sealed bytea,
    version         bigint      NOT NULL,
    deleted         boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (deleted = (password_sealed IS NULL)),
    CHECK (deleted OR (host IS NOT NULL AND port IS NOT NULL AND "user" IS NOT NULL
                       AND database IS NOT NULL))
);
CREATE INDEX database_connections_environment ON database_connections (environment_id)
    WHERE NOT deleted;
