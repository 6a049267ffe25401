-- Affairs: the 49 applications' manifests, declarations (drafts, attachments), cases and their events,
-- appointments, payments, ratings, enterprise service requests, move-car reports, the police map and the
-- no-criminal-record applications pushed by the Ministry platform.

CREATE TABLE manifests (
    code text NOT NULL,               -- app-NN
    version integer NOT NULL,
    kind text NOT NULL,
    category text NOT NULL,
    name text NOT NULL,
    body jsonb NOT NULL,              -- the whole manifest (README: manifest format)
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, version)
);
CREATE TABLE current_manifest (code text PRIMARY KEY, version integer NOT NULL);

CREATE TABLE authorisations (        -- identity authorisation: this person shares these scopes with this app
    person_id uuid NOT NULL,
    code text NOT NULL,
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, code)
);

CREATE TABLE drafts (
    person_id uuid NOT NULL,
    code text NOT NULL,
    form_enc text NOT NULL,           -- SM4: a draft holds personal data
    revision integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, code)
);

CREATE TABLE attachments (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    mime text NOT NULL,
    size integer NOT NULL,
    sm3 text NOT NULL,
    filename text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE case_seq;
CREATE TABLE cases (
    id uuid PRIMARY KEY,
    case_no text NOT NULL UNIQUE,
    person_id uuid NOT NULL,
    enterprise_id uuid,
    code text NOT NULL,
    manifest_version integer NOT NULL,
    system text NOT NULL,             -- business system binding (police type)
    org_code text NOT NULL,           -- handling organisation
    region_code text NOT NULL,
    idempotency_key text,
    form_enc text NOT NULL,
    mailing_enc text,
    status text NOT NULL,
    external_ref text,
    materials_requested jsonb NOT NULL DEFAULT '[]',
    deadline_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, idempotency_key)
);
CREATE INDEX cases_mine ON cases (person_id, created_at DESC, id DESC);
CREATE INDEX cases_ref ON cases (system, external_ref);

CREATE TABLE case_events (
    id bigserial PRIMARY KEY,
    case_id uuid NOT NULL REFERENCES cases (id),
    status text NOT NULL,
    note text NOT NULL DEFAULT '',
    source text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_events_case ON case_events (case_id, id);

CREATE TABLE refused_callbacks (      -- unsigned, badly signed, stale or replayed callbacks: kept for review
    id bigserial PRIMARY KEY,
    system text NOT NULL,
    reason text NOT NULL,
    body_sm3 text NOT NULL,
    ip text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifications (          -- what we told a person (the push inbox gets it too, see affairs/notify.py)
    id bigserial PRIMARY KEY,
    person_id uuid NOT NULL,
    template text NOT NULL,
    params jsonb NOT NULL,
    source text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_person ON notifications (person_id, id DESC);

-- Offices: police stations, exit-entry halls, vehicle offices, detention centres. The map query is a bounding box
-- on (lat, lon) with a btree on a coarse grid cell, then exact distance on the few rows inside.
CREATE TABLE offices (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,               -- station | exit_entry | vehicle | detention | service
    region_code text NOT NULL,
    address text NOT NULL,
    phone text NOT NULL,
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    cell integer NOT NULL,            -- floor(lat*10)*10000 + floor(lon*10): 0.1° cells
    hours text NOT NULL,
    services text[] NOT NULL
);
CREATE INDEX offices_cell ON offices (cell, lat, lon);
CREATE INDEX offices_kind_region ON offices (kind, region_code);

CREATE TABLE slots (
    id uuid PRIMARY KEY,
    office_id uuid NOT NULL REFERENCES offices (id),
    code text NOT NULL,
    starts_at timestamptz NOT NULL,
    quota integer NOT NULL,
    booked integer NOT NULL DEFAULT 0,
    CHECK (booked >= 0 AND booked <= quota),
    UNIQUE (office_id, code, starts_at)
);
CREATE INDEX slots_lookup ON slots (code, office_id, starts_at);

CREATE TABLE bookings (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL,
    slot_id uuid NOT NULL REFERENCES slots (id),
    code text NOT NULL,
    status text NOT NULL,             -- booked | cancelled | attended | no_show
    details jsonb NOT NULL DEFAULT '{}',
    reminded_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);
CREATE INDEX bookings_mine ON bookings (person_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX bookings_one_per_slot ON bookings (person_id, slot_id) WHERE status = 'booked';

CREATE TABLE blacklist (
    person_id uuid NOT NULL,
    reason text NOT NULL,
    until timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blacklist_person ON blacklist (person_id, until);

CREATE TABLE orders (
    id uuid PRIMARY KEY,
    out_trade_no text NOT NULL UNIQUE,
    person_id uuid NOT NULL,
    code text NOT NULL,
    item text NOT NULL,
    amount_fen integer NOT NULL CHECK (amount_fen > 0),
    channel text NOT NULL,            -- wechat | alipay
    status text NOT NULL,             -- created | paid | refunding | refunded | closed
    channel_trade_no text,
    paid_at timestamptz,
    refunded_fen integer NOT NULL DEFAULT 0,
    abnormal text,                    -- set by reconciliation
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_mine ON orders (person_id, created_at DESC, id DESC);
CREATE TABLE reconciliations (
    bill_date date NOT NULL,
    channel text NOT NULL,
    matched integer NOT NULL,
    abnormal integer NOT NULL,
    report jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (bill_date, channel)
);

CREATE TABLE city_links (
    code text NOT NULL,
    city_code text NOT NULL,
    url text NOT NULL,
    title text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, city_code)
);

CREATE TABLE awards (                 -- items 1, 42, 43: published commendations
    id uuid PRIMARY KEY,
    code text NOT NULL,
    awardee text NOT NULL,
    region_code text NOT NULL,
    title text NOT NULL,
    year integer NOT NULL
);
CREATE INDEX awards_lookup ON awards (code, awardee);

CREATE TABLE move_car (
    id uuid PRIMARY KEY,
    reporter_id uuid NOT NULL,
    owner_id uuid,                    -- the owner's person id when enrolled (for the push and the reply)
    plate text NOT NULL,
    location text NOT NULL,
    status text NOT NULL,             -- notified | moving | moved | unreachable
    relay_code text NOT NULL,         -- the virtual number both sides call; neither learns the other's phone
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX move_car_reporter ON move_car (reporter_id, created_at DESC, id DESC);
CREATE INDEX move_car_plate ON move_car (plate, created_at);

CREATE TABLE enterprise_requests (
    id uuid PRIMARY KEY,
    enterprise_id uuid NOT NULL,
    person_id uuid NOT NULL,
    service text NOT NULL,
    detail text NOT NULL,
    preferred_at timestamptz NOT NULL,
    status text NOT NULL,             -- submitted | scheduled | visited | closed
    progress jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enterprise_requests_ent ON enterprise_requests (enterprise_id, created_at DESC, id DESC);

CREATE TABLE ratings (                -- 好差评: one per rated thing (case, booking, enterprise request)
    subject text PRIMARY KEY,         -- case:<uuid> | ent:<uuid>
    person_id uuid NOT NULL,
    org_code text NOT NULL,
    level integer NOT NULL CHECK (level BETWEEN 1 AND 5),
    tags text[] NOT NULL,
    comment text NOT NULL DEFAULT '',
    automatic boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE rectifications (
    id uuid PRIMARY KEY,
    subject text NOT NULL UNIQUE REFERENCES ratings (subject),
    org_code text NOT NULL,
    status text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rectifications_org ON rectifications (org_code, created_at DESC, id DESC);

CREATE TABLE ncr_applications (       -- no-criminal-record certificates asked through the Ministry platform
    id uuid PRIMARY KEY,
    mps_apply_no text NOT NULL UNIQUE,
    id_number_enc text NOT NULL,
    name_enc text NOT NULL,
    purpose text NOT NULL,
    status text NOT NULL,             -- received | no_record | has_record | fed_back
    result text,
    certificate_ref text,             -- the sealed PDF once eseal lands (affairs/certificates.py)
    fed_back_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
