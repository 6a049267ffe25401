-- Mini-program channels: a WeChat openid or an Alipay user id is a device address (token) of its own platform.
ALTER TABLE devices DROP CONSTRAINT devices_platform_check;
ALTER TABLE devices ADD CONSTRAINT devices_platform_check
    CHECK (platform IN ('apns', 'hms', 'sms', 'wechat', 'alipay'));

-- WeChat subscribe messages: each 允许 the user taps allows one message of that template (one-time quota).
CREATE TABLE mini_consents (
    device_id uuid NOT NULL REFERENCES devices (id),
    template_id text NOT NULL,
    remaining int NOT NULL DEFAULT 0 CHECK (remaining >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, template_id)
);

-- Alipay template messages: each form id a page submitted allows one message within 7 days.
CREATE TABLE mini_form_ids (
    form_id text PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX mini_form_ids_open ON mini_form_ids (device_id, expires_at) WHERE used_at IS NULL;
