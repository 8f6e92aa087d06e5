-- Identity: users (global: one account may belong to several tenants), their memberships,
-- sessions and refresh tokens, two-factor secrets and recovery codes, invitations, password
-- resets, API keys, login attempts, signing keys, the audit trail and the event outbox.
--
-- Tenant-owned tables carry tenant_id and are guarded by row-level security, like every
-- service's: queries run as a role that owns nothing and see a tenant's rows only inside a
-- transaction that set app.tenant_id to it (or app.platform for authorised cross-tenant work,
-- such as looking up a refresh token by its hash before its tenant is known).

CREATE SCHEMA IF NOT EXISTS auth;

CREATE TABLE auth.users (
    id                    uuid PRIMARY KEY,
    email                 text NOT NULL UNIQUE,
    display_name          text NOT NULL,
    password_hash         text NOT NULL,
    platform_admin        boolean NOT NULL DEFAULT false,
    -- AES-256-GCM sealed TOTP secrets (key id, nonce and ciphertext in one value).
    totp_secret           bytea,
    totp_pending_secret   bytea,
    totp_pending_until    timestamptz,
    -- Last accepted TOTP time step: a code is accepted once.
    totp_last_step        bigint NOT NULL DEFAULT 0,
    failed_logins         integer NOT NULL DEFAULT 0,
    lock_count            integer NOT NULL DEFAULT 0,
    locked_until          timestamptz,
    last_login_at         timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.recovery_codes (
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE auth.memberships (
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL REFERENCES auth.users (id),
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_by_user ON auth.memberships (user_id);

-- Sessions of platform administrators belong to no tenant (tenant_id NULL): row-level
-- security shows those only to platform transactions.
CREATE TABLE auth.sessions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid,
    user_id       uuid NOT NULL REFERENCES auth.users (id),
    ip_address    text NOT NULL,
    user_agent    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_by_tenant_user ON auth.sessions (tenant_id, user_id);
CREATE INDEX sessions_by_user ON auth.sessions (user_id) WHERE revoked_at IS NULL;

-- A session's refresh tokens form its family: each use consumes one and issues the next; a
-- consumed one presented again revokes the session.
CREATE TABLE auth.refresh_tokens (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    session_id  uuid NOT NULL REFERENCES auth.sessions (id),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_by_session ON auth.refresh_tokens (tenant_id, session_id);

CREATE TABLE auth.login_challenges (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    user_id     uuid NOT NULL REFERENCES auth.users (id),
    token_hash  bytea NOT NULL UNIQUE,
    ip_address  text NOT NULL,
    user_agent  text NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

CREATE TABLE auth.login_attempts (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    user_id     uuid,
    email       text NOT NULL,
    ip_address  text NOT NULL,
    user_agent  text NOT NULL,
    succeeded   boolean NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_by_tenant ON auth.login_attempts (tenant_id, created_at);

CREATE TABLE auth.invitations (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    email        text NOT NULL,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    message      text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,
    inviter_id   uuid NOT NULL REFERENCES auth.users (id),
    state        text NOT NULL CHECK (state IN ('pending', 'accepted', 'revoked', 'expired')),
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    accepted_by  uuid REFERENCES auth.users (id)
);
CREATE INDEX invitations_by_tenant ON auth.invitations (tenant_id, id);
-- At most one pending invitation per email and tenant.
CREATE UNIQUE INDEX invitations_pending_email ON auth.invitations (tenant_id, email) WHERE state = 'pending';

CREATE TABLE auth.password_resets (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES auth.users (id),
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.api_keys (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    display_name   text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    scopes         text[] NOT NULL,
    secret_hash    bytea NOT NULL UNIQUE,
    secret_prefix  text NOT NULL,
    creator_id     uuid NOT NULL REFERENCES auth.users (id),
    expires_at     timestamptz,
    last_used_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX api_keys_by_tenant ON auth.api_keys (tenant_id, id);

-- Keys that sign tokens. The private key is sealed with AUTH_ENCRYPTION_KEYS; only the public
-- JWK leaves the service. One key is active at a time; retired keys stay published until the
-- tokens they signed have expired.
CREATE TABLE auth.signing_keys (
    kid          text PRIMARY KEY,
    algorithm    text NOT NULL,
    private_key  bytea NOT NULL,
    public_jwk   jsonb NOT NULL,
    state        text NOT NULL CHECK (state IN ('active', 'retired')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON auth.signing_keys (state) WHERE state = 'active';

CREATE TABLE auth.audit_log (
    id          uuid PRIMARY KEY,
    tenant_id   uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL,
    details     jsonb NOT NULL,
    request_id  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_by_tenant ON auth.audit_log (tenant_id, created_at);

CREATE TABLE auth.outbox (
    id           uuid PRIMARY KEY,
    tenant_id    uuid,
    event_type   text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON auth.outbox (id) WHERE published_at IS NULL;

DO $$
DECLARE
    tenant_table text;
BEGIN
    FOREACH tenant_table IN ARRAY ARRAY[
        'memberships', 'sessions', 'refresh_tokens', 'login_challenges', 'login_attempts',
        'invitations', 'password_resets', 'api_keys', 'audit_log'
    ] LOOP
        EXECUTE format('ALTER TABLE auth.%I ENABLE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format('ALTER TABLE auth.%I FORCE ROW LEVEL SECURITY', tenant_table);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON auth.%I USING ('
            'tenant_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid) '
            'OR (SELECT current_setting(''app.platform'', true)) = ''on'')',
            tenant_table);
    END LOOP;
END
$$;
