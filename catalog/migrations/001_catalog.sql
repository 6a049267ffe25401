-- Catalog: the apps on the home screen (the 49 and every onboarded app), their reviewed versions, the home layout
-- per region and module, health polling state and the notifications sent to owning organisations.

CREATE SEQUENCE app_number START 50;  -- app-01 … app-49 are the seeded applications

-- One row per app: what is live now (copied from its approved version) and its listing state.
CREATE TABLE apps (
    code text PRIMARY KEY,                       -- app-NN
    org_id uuid,                                 -- owning organisation (NULL: seeded, owned by the province)
    org_path text NOT NULL,                      -- the owner's materialised org path, for data scope
    name text NOT NULL,
    category text NOT NULL,                      -- business line: 内保 出入境 交管 治安 监管 其它
    kind text NOT NULL CHECK (kind IN ('h5', 'mini_program', 'native', 'backend')),
    audience text NOT NULL DEFAULT 'natural' CHECK (audience IN ('natural', 'legal')),
    zone text NOT NULL DEFAULT 'internet',
    entry_path text NOT NULL DEFAULT '',
    icon_digest text NOT NULL DEFAULT '',
    channels text[] NOT NULL DEFAULT '{}',
    regions text[] NOT NULL DEFAULT '{}',        -- {'320000'} = province-wide, else city codes
    hidden_cities text[] NOT NULL DEFAULT '{}',  -- per-city visibility: cities where a province-wide app is hidden
    scopes text[] NOT NULL DEFAULT '{}',
    redirect_uris text[] NOT NULL DEFAULT '{}',
    client_id text,
    live_version int NOT NULL DEFAULT 0,         -- 0: never approved
    listed boolean NOT NULL DEFAULT false,
    delisted_reason text NOT NULL DEFAULT '',    -- '' | 'admin' | 'health'
    pinyin_full text NOT NULL DEFAULT '',
    pinyin_initials text NOT NULL DEFAULT '',
    health_failures int NOT NULL DEFAULT 0,
    health_checked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX apps_listed ON apps (code) WHERE listed;
CREATE INDEX apps_org ON apps (org_path text_pattern_ops);

-- Every submitted version of an app: pending review, approved (live or superseded) or rejected.
CREATE TABLE app_versions (
    id uuid PRIMARY KEY,
    app_code text NOT NULL REFERENCES apps (code),
    version int NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    name text NOT NULL,
    category text NOT NULL,
    kind text NOT NULL,
    audience text NOT NULL,
    zone text NOT NULL,
    entry_path text NOT NULL,
    icon_digest text NOT NULL,
    channels text[] NOT NULL,
    regions text[] NOT NULL,
    scopes text[] NOT NULL,
    redirect_uris text[] NOT NULL,
    submitted_by uuid,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    reviewed_by uuid,
    reviewed_at timestamptz,
    reason text NOT NULL DEFAULT '',
    UNIQUE (app_code, version)
);
CREATE UNIQUE INDEX app_versions_one_pending ON app_versions (app_code) WHERE status = 'pending';
CREATE INDEX app_versions_status ON app_versions (status, submitted_at, id);

-- The home layout: per region (the province or a city), module and slot, which app sits there.
CREATE TABLE layout_slots (
    region_code text NOT NULL,
    module text NOT NULL,
    position int NOT NULL CHECK (position BETWEEN 0 AND 63),
    app_code text NOT NULL REFERENCES apps (code),
    PRIMARY KEY (region_code, module, position)
);

-- Bumped by every change that can alter a home screen (listing, layout, visibility, an approved version).
CREATE TABLE layout_version (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO layout_version VALUES (true, 1);

-- Notifications to an app's owning organisation (automatic delisting and relisting, review outcomes).
CREATE TABLE notifications (
    id uuid PRIMARY KEY,
    org_path text NOT NULL,
    org_id uuid,
    app_code text NOT NULL REFERENCES apps (code),
    kind text NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_app ON notifications (app_code, created_at);
