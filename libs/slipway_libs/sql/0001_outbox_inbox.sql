-- The transactional outbox: events written in the same transaction as the state they describe.
-- xid orders rows against transactions still in flight (see slipway_libs.relay).
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    xid         xid8        NOT NULL DEFAULT pg_current_xact_id(),
    topic       text        NOT NULL,
    key         text        NOT NULL,
    event_id    uuid        NOT NULL UNIQUE,
    event_type  text        NOT NULL,
    payload     text        NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The idempotent inbox: one row per (consumer group, event) applied, written in the same
-- transaction as the consumer's effects.
CREATE TABLE inbox (
    consumer_group text        NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    outcome        text        NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'dead_lettered')),
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
