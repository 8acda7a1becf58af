-- Outgoing webhooks: the configured endpoints with their delivery state, and the delivery log.
-- Keep in step with migrations/sqlite (same version).
--
-- An endpoint is identified by (tenant_id, id) from configuration; `uid` is a surrogate key
-- for claims. `cursor_seq` is the seq of the last event delivered (or skipped by the
-- endpoint's filter): everything of the tenant after it is still owed. A claim holds a lease
-- (`locked_until`) so one worker (one replica) delivers to an endpoint at a time, in order.
-- Secrets stay in configuration, never here.
CREATE TABLE webhook_endpoints (
    uid                   TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    id                    TEXT NOT NULL,
    url                   TEXT NOT NULL,
    -- JSON array of event types and prefixes ("message.*"); [] means every event.
    events                JSONB NOT NULL,
    -- 'enabled' or 'disabled' (after `disable_after` consecutive failures; an admin re-enables).
    state                 TEXT NOT NULL,
    disabled_reason       TEXT,
    disabled_at           BIGINT,
    cursor_seq            BIGINT NOT NULL,
    consecutive_failures  BIGINT NOT NULL DEFAULT 0,
    next_attempt_at       BIGINT NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    last_status           BIGINT,
    last_error            TEXT,
    last_attempt_at       BIGINT,
    last_success_at       BIGINT,
    -- Set when the endpoint left the configuration: kept (cursor, log), never delivered to.
    removed_at            BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints(state, next_attempt_at);

-- One row per HTTP attempt (event deliveries and test sends), pruned after
-- `webhooks.log_retention_hours`.
CREATE TABLE webhook_deliveries (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL,
    -- 'event' or 'test'.
    kind         TEXT NOT NULL,
    event_seq    BIGINT NOT NULL,
    event_type   TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(tenant_id, endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries(created_at);
