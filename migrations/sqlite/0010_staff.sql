-- The staff directory of each tenant. `id` is the staff identity exactly as tokens and JWTs
-- carry it (an API token's name, a JWT's `sub`): identities are recorded here when they
-- authenticate (auth_kind, role, last_seen_at), and admins add entries or give them a display
-- name, an email and the active flag (managed). Assignments name an active entry.
CREATE TABLE staff (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    display_name  TEXT,
    email         TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    -- created or edited by an admin
    managed       INTEGER NOT NULL DEFAULT 0,
    -- how it last authenticated: 'token' or 'jwt' (NULL: never seen), and with which role
    auth_kind     TEXT,
    role          TEXT,
    last_seen_at  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
