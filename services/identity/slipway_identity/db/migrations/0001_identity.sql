-- Identity: users, sessions, signing keys, organizations, members, roles, invitations, API tokens,
-- login throttling and the audit log.

-- One counter orders every change the gateway's access projection must apply.
CREATE SEQUENCE access_version;

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE sessions (
    id                 uuid        PRIMARY KEY,
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_token_hash text        NOT NULL UNIQUE,
    previous_hash      text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    refreshed_at       timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL,
    revoked_at         timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_previous ON sessions (previous_hash);

CREATE TABLE signing_keys (
    kid                 text        PRIMARY KEY,
    private_key_sealed  bytea       NOT NULL,
    public_jwk          jsonb       NOT NULL,
    status              text        NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    retired_at          timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (status) WHERE status = 'active';

CREATE TABLE login_attempts (
    id         bigserial   PRIMARY KEY,
    email      text        NOT NULL,
    address    text        NOT NULL,
    succeeded  boolean     NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email ON login_attempts (lower(email), at);
CREATE INDEX login_attempts_address ON login_attempts (address, at);

CREATE TABLE organizations (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    owner_id    uuid        NOT NULL REFERENCES users (id),
    version     bigint      NOT NULL DEFAULT nextval('access_version'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

CREATE TABLE custom_roles (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    clusters        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    projects        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    version         bigint      NOT NULL DEFAULT nextval('access_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX custom_roles_name ON custom_roles (organization_id, lower(name))
    WHERE deleted_at IS NULL;

CREATE TABLE members (
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text        CHECK (role IN ('owner', 'admin', 'devops', 'viewer', 'billing')),
    custom_role_id  uuid        REFERENCES custom_roles (id),
    version         bigint      NOT NULL DEFAULT nextval('access_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    PRIMARY KEY (organization_id, user_id),
    CHECK ((role IS NULL) <> (custom_role_id IS NULL))
);
CREATE INDEX members_user ON members (user_id) WHERE removed_at IS NULL;

CREATE TABLE invitations (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           text        NOT NULL,
    role            text        CHECK (role IN ('owner', 'admin', 'devops', 'viewer', 'billing')),
    custom_role_id  uuid        REFERENCES custom_roles (id),
    invited_by      uuid        REFERENCES users (id),
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'accepted', 'revoked')),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    accepted_at     timestamptz,
    CHECK ((role IS NULL) <> (custom_role_id IS NULL))
);
CREATE UNIQUE INDEX invitations_one_pending ON invitations (organization_id, lower(email))
    WHERE status = 'pending';

CREATE TABLE api_tokens (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    token_sha256    text        NOT NULL UNIQUE,
    token_prefix    text        NOT NULL,
    role            text        CHECK (role IN ('owner', 'admin', 'devops', 'viewer', 'billing')),
    custom_role_id  uuid        REFERENCES custom_roles (id),
    created_by      uuid        REFERENCES users (id),
    version         bigint      NOT NULL DEFAULT nextval('access_version'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    CHECK ((role IS NULL) <> (custom_role_id IS NULL))
);
CREATE INDEX api_tokens_org ON api_tokens (organization_id, created_at);

CREATE TABLE audit_events (
    id              uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    source          text        NOT NULL,
    actor_type      text        NOT NULL,
    actor_id        text,
    actor_name      text,
    origin          text        NOT NULL,
    action          text        NOT NULL,
    target_type     text        NOT NULL,
    target_id       text        NOT NULL,
    target_name     text,
    project_id      uuid,
    environment_id  uuid,
    change          jsonb
);
CREATE INDEX audit_events_org_time ON audit_events (organization_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_org_target ON audit_events (organization_id, target_type, target_id);
CREATE INDEX audit_events_org_actor ON audit_events (organization_id, actor_id);
