-- The integrated government-service platform (一体化政务服务平台): the 办件 feed's outbox.
--
-- Every case event becomes one feed record in the same transaction that writes the event (a trigger on
-- case_events), so no transition can be committed without its record and no record exists without its
-- transition, whatever code path wrote the event. The drainer (affairs.govservice) sends records in id order; a
-- case's record waits while an earlier one of the same case is undelivered, so the platform sees each case's
-- states in order. `record_key` is the idempotency key the platform de-duplicates on.

CREATE TABLE gov_feed (
    id bigserial PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    event_id bigint REFERENCES case_events (id),   -- NULL for a reconciliation resend of the current state
    record_key text NOT NULL UNIQUE,
    status text NOT NULL,
    at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    delivered_at timestamptz,
    rejected_code text                              -- the platform refused this record for good (dead letter)
);
CREATE INDEX gov_feed_pending ON gov_feed (id) WHERE delivered_at IS NULL AND rejected_code IS NULL;
CREATE INDEX gov_feed_case ON gov_feed (case_id, id);

CREATE FUNCTION gov_feed_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO affairs.gov_feed (case_id, event_id, record_key, status, at)
    SELECT NEW.case_id, NEW.id, c.case_no || '-' || NEW.id, NEW.status, NEW.at FROM affairs.cases c
    WHERE c.id = NEW.case_id;
    RETURN NEW;
END $$;

CREATE TRIGGER case_events_gov_feed AFTER INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION gov_feed_enqueue();

-- The last reconciliation: what was compared and what was repaired (the console shows it).
CREATE TABLE gov_reconciliations (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    compared integer NOT NULL,
    repaired integer NOT NULL,
    detail jsonb NOT NULL DEFAULT '[]'
);
