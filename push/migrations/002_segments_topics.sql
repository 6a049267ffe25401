-- Audiences beyond users and device region/tags: a topic, or identity criteria (sex, age band, user type) that
-- identity.segments streams person ids for.
ALTER TABLE messages
    ADD COLUMN topic text,
    ADD COLUMN segment_sex text CHECK (segment_sex IN ('male', 'female')),
    ADD COLUMN segment_age_min int,
    ADD COLUMN segment_age_max int,
    ADD COLUMN segment_user_type text CHECK (segment_user_type IN ('natural', 'legal'));

-- Devices subscribed to a topic (e.g. a city's traffic alerts); the fan-out of a topic pages by device id.
CREATE TABLE topic_subscriptions (
    topic text NOT NULL,
    device_id uuid NOT NULL REFERENCES devices (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, device_id)
);
CREATE INDEX topic_subscriptions_device ON topic_subscriptions (device_id);

-- Crash recovery of the send log: which worker claimed a pair (its heartbeat tells whether it is alive), and
-- whether the pair was taken back from a dead worker (its re-send first asks the provider where it can).
ALTER TABLE deliveries
    ADD COLUMN claimed_by text NOT NULL DEFAULT '',
    ADD COLUMN recovered boolean NOT NULL DEFAULT false;
