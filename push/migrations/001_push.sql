-- Push: device addresses, messages, the per-user inbox and the send log that makes delivery at-most-once per
-- (message, device) at the provider.

-- An address a user can be reached at: an APNs or HarmonyOS device token, or a phone for SMS (encrypted).
CREATE TABLE devices (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    platform text NOT NULL CHECK (platform IN ('apns', 'hms', 'sms')),
    token text,                                  -- provider token; NULL for sms
    phone_enc text,                              -- SM4 ciphertext of the phone; NULL unless sms
    app_version text NOT NULL DEFAULT '',
    locale text NOT NULL DEFAULT 'zh-CN',
    region text NOT NULL DEFAULT '',
    tags text[] NOT NULL DEFAULT '{}',
    active boolean NOT NULL DEFAULT true,
    deactivated_reason text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((platform = 'sms') = (token IS NULL)),
    CHECK ((platform = 'sms') = (phone_enc IS NOT NULL))
);
CREATE UNIQUE INDEX devices_token ON devices (platform, token) WHERE token IS NOT NULL;
CREATE UNIQUE INDEX devices_sms ON devices (person_id) WHERE platform = 'sms';
CREATE INDEX devices_person ON devices (person_id) WHERE active;
CREATE INDEX devices_region ON devices (region, person_id) WHERE active;
CREATE INDEX devices_tags ON devices USING gin (tags) WHERE active;

-- A send request of a business system. (client_id, idempotency_key) makes a retried send a no-op.
CREATE TABLE messages (
    id uuid PRIMARY KEY,
    client_id text NOT NULL,
    idempotency_key text,
    template text NOT NULL,
    params jsonb NOT NULL DEFAULT '{}',
    title text NOT NULL,
    body text NOT NULL,
    priority text NOT NULL CHECK (priority IN ('high', 'normal')),
    ttl int NOT NULL,
    collapse_key text,
    send_at timestamptz NOT NULL,
    channels text[] NOT NULL,
    recipients uuid[],                           -- explicit users (at most 1000), or NULL for a segment
    segment_region text,
    segment_tags text[],
    status text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'fanned_out')),
    fanout_after uuid,                           -- fan-out progress: the last device id queued (resume point)
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, idempotency_key)
);

-- The message centre: one row per (user, message).
CREATE TABLE inbox (
    person_id uuid NOT NULL,
    message_id uuid NOT NULL REFERENCES messages (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at timestamptz,
    PRIMARY KEY (person_id, message_id)
);
CREATE INDEX inbox_list ON inbox (person_id, created_at DESC, message_id DESC);
CREATE INDEX inbox_unread ON inbox (person_id) WHERE read_at IS NULL;

-- The send log: inserted (status 'sending') before the provider is called, so a pair reaches it at most once.
CREATE TABLE deliveries (
    message_id uuid NOT NULL REFERENCES messages (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    person_id uuid NOT NULL,
    channel text NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'sending', 'retry', 'delivered', 'failed')),
    attempts int NOT NULL DEFAULT 1,
    error text NOT NULL DEFAULT '',
    provider_id text NOT NULL DEFAULT '',
    claimed_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, device_id)
);
CREATE INDEX deliveries_sending ON deliveries (claimed_at) WHERE status = 'sending';
CREATE INDEX messages_unfanned ON messages (send_at) WHERE status = 'scheduled';
