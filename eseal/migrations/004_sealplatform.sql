-- The national / provincial e-seal platform (赋码, 备案, status sync, sealing logs): a seal waits in 'filing'
-- until the platform has confirmed its code and filing; the outbox holds every message for the platform until it
-- is delivered (exactly once: the platform de-duplicates on `key`); the cursor says which sealing logs it has.
ALTER TABLE seals DROP CONSTRAINT seals_status_check;
ALTER TABLE seals ADD CONSTRAINT seals_status_check CHECK (status IN (
    'applied', 'approved', 'rejected', 'made', 'filing', 'registered', 'published', 'suspended', 'revoked',
    'destroyed'));
ALTER TABLE seals ADD COLUMN filing_no text;    -- the platform's 备案号, NULL until filed

CREATE TABLE platform_outbox (
    id bigserial PRIMARY KEY,
    key text NOT NULL UNIQUE,                    -- the idempotency key the platform de-duplicates on
    kind text NOT NULL CHECK (kind IN ('file', 'status')),
    seal_id uuid NOT NULL REFERENCES seals (id),
    payload jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    last_error text NOT NULL DEFAULT '',
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX platform_outbox_due ON platform_outbox (next_at, id) WHERE delivered_at IS NULL;
CREATE INDEX platform_outbox_seal ON platform_outbox (seal_id, id) WHERE delivered_at IS NULL;

CREATE TABLE platform_log_cursor (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL                          -- sealing logs up to this seq are at the platform
);
INSERT INTO platform_log_cursor (seq) VALUES (0);
