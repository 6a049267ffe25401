-- 好差评 reported to the provincial system (affairs/ratings.py, affairs/haocp.py, docs/domains/haocp.md): the
-- national evaluation fields on each rating, the rectification loop of bad ratings with its deadlines and one
-- second rating, and the outbox that delivers every report exactly once.

ALTER TABLE ratings
    ADD COLUMN channel text NOT NULL DEFAULT 'app',        -- app | miniapp | pc | window | kiosk | sms | phone
    ADD COLUMN method text NOT NULL DEFAULT 'active',      -- active | default (the automatic rating) | sms
    ADD COLUMN item_code text NOT NULL DEFAULT '',         -- 事项编码
    ADD COLUMN case_no text NOT NULL DEFAULT '',           -- 办件编号
    ADD COLUMN comment_masked boolean NOT NULL DEFAULT false,
    ADD COLUMN appeal_upheld boolean NOT NULL DEFAULT false; -- a bad rating whose appeal was upheld leaves the stats

ALTER TABLE rectifications
    -- open (核查 due) | rectifying (整改 due) | appealed (申诉 under review) | rectified (回访 due)
    -- | visiting (second rating due) | closed
    ADD COLUMN due_at timestamptz NOT NULL DEFAULT now() + interval '1 day',
    ADD COLUMN person_id uuid,
    ADD COLUMN events jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN visit_phone_index bytea,
    ADD COLUMN second_level integer CHECK (second_level BETWEEN 1 AND 5),
    ADD COLUMN second_tags text[],
    ADD COLUMN second_comment text,
    ADD COLUMN second_channel text,
    ADD COLUMN second_at timestamptz,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX rectifications_visit ON rectifications (visit_phone_index) WHERE status = 'visiting';
CREATE INDEX rectifications_due ON rectifications (due_at) WHERE status <> 'closed';

CREATE TABLE haocp_outbox (            -- reports to the provincial 好差评 system, delivered once each
    key text PRIMARY KEY,              -- the idempotency key the system de-duplicates on (stable per event)
    kind text NOT NULL,                -- evaluation | rectification
    subject text NOT NULL,
    payload jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),   -- due (after the backoff of the last failure)
    leased_until timestamptz,                    -- a sender has it in flight until then (real time)
    delivered_at timestamptz,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX haocp_outbox_due ON haocp_outbox (next_at) WHERE delivered_at IS NULL;
CREATE INDEX haocp_outbox_subject ON haocp_outbox (subject, created_at);
