-- Operation log: every administrator action (who, when, from where, what, result, reason for failure).
CREATE TABLE op_log (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    admin_id uuid,
    username text NOT NULL DEFAULT '',
    org_path text NOT NULL DEFAULT '',
    ip text NOT NULL DEFAULT '',
    method text NOT NULL,
    path text NOT NULL,
    action text NOT NULL,
    target text NOT NULL DEFAULT '',
    result text NOT NULL CHECK (result IN ('ok', 'fail')),
    status int NOT NULL,
    reason text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT ''
);
-- The searches: by user, by action, by time alone, each newest first (keyset on (at, id)).
CREATE INDEX op_log_at ON op_log (at DESC, id DESC);
CREATE INDEX op_log_user_at ON op_log (username, at DESC, id DESC);
CREATE INDEX op_log_action_at ON op_log (action, at DESC, id DESC);
CREATE INDEX op_log_user_action_at ON op_log (username, action, at DESC, id DESC);
CREATE INDEX op_log_org_at ON op_log (org_path text_pattern_ops, at DESC);

-- App-integration log: every call between an app and the platform, in either direction.
CREATE TABLE integration_log (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    app_code text NOT NULL,
    org_path text NOT NULL DEFAULT '',
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    interface text NOT NULL,
    method text NOT NULL DEFAULT 'POST',
    status int NOT NULL,
    result text NOT NULL CHECK (result IN ('ok', 'fail')),
    latency_ms real NOT NULL DEFAULT 0,
    ip text NOT NULL DEFAULT '',
    region_code text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT ''
);
CREATE INDEX integration_log_at ON integration_log (at DESC, id DESC);
CREATE INDEX integration_log_app_at ON integration_log (app_code, at DESC, id DESC);
CREATE INDEX integration_log_interface_at ON integration_log (interface, at DESC);

-- Daily backups of the integration log written by the worker (one gzip file per UTC day).
CREATE TABLE integration_backups (
    day date PRIMARY KEY,
    file text NOT NULL,
    rows bigint NOT NULL,
    sm3 text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Masking catalogue: sensitive fields with a level; a role sees values unmasked up to its mask_level.
CREATE TABLE mask_fields (
    field text PRIMARY KEY CHECK (field ~ '^[a-z_]{2,40}$'),
    label text NOT NULL,
    level int NOT NULL CHECK (level BETWEEN 1 AND 3),
    rule text NOT NULL CHECK (rule IN ('name', 'phone', 'id_number', 'address', 'email', 'ip', 'all')),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Monitoring: per-interface samples taken from the process metrics, and alert rules with their state.
CREATE TABLE metric_samples (
    at timestamptz NOT NULL,
    route text NOT NULL,
    count bigint NOT NULL,
    errors bigint NOT NULL,
    p50_ms real NOT NULL,
    p95_ms real NOT NULL,
    p99_ms real NOT NULL,
    PRIMARY KEY (route, at)
);
CREATE INDEX metric_samples_at ON metric_samples (at);

CREATE TABLE alert_rules (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    metric text NOT NULL CHECK (metric IN ('error_rate', 'p99_ms', 'rate_per_s')),
    route text NOT NULL DEFAULT '*',
    op text NOT NULL DEFAULT '>' CHECK (op IN ('>', '<')),
    threshold double precision NOT NULL,
    window_s int NOT NULL CHECK (window_s BETWEEN 60 AND 86400),
    org_path text NOT NULL,
    created_by uuid NOT NULL,
    firing boolean NOT NULL DEFAULT false,
    last_value double precision,
    changed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_events (
    id uuid PRIMARY KEY,
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('fired', 'cleared')),
    value double precision NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_rule ON alert_events (rule_id, at DESC);

-- Administrators' inbox (alerts and reviews to do); read in the console.
CREATE TABLE admin_inbox (
    id uuid PRIMARY KEY,
    admin_id uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    title text NOT NULL,
    body text NOT NULL,
    read_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_inbox_admin ON admin_inbox (admin_id, created_at DESC);
