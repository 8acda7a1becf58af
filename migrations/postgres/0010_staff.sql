-- The staff directory of each tenant. `id` is the staff identity exactly as tokens and JWTs
-- carry it (an API token's name, a JWT's `sub`): identities are recorded here when they
-- authenticate (auth_kind, role, last_seen_at), and admins add entries or give them a display
-- name, an email and the active flag (managed). Assignments name an active entry.
CREATE TABLE staff (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    display_name  TEXT,
    email         TEXT,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    -- created or edited by an admin
    managed       BOOLEAN NOT NULL DEFAULT FALSE,
    -- how it last authenticated: 'token' or 'jwt' (NULL: never seen), and with which role
    auth_kind     TEXT,
    role          TEXT,
    last_seen_at  BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
