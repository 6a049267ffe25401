-- Natural persons: personal data only as SM4 ciphertext (core.fieldcrypt) plus keyed SM3 blind indexes.
CREATE TABLE people (
    id uuid PRIMARY KEY,
    wangha text NOT NULL UNIQUE,                 -- 网号: 10 characters, keyed-SM3-derived, check character last
    id_type text NOT NULL CHECK (id_type IN ('resident', 'exit_entry')),
    id_index bytea NOT NULL UNIQUE,              -- blind index of (id_type, id_number): one person, one 网号
    id_number_enc text NOT NULL,
    name_enc text NOT NULL,
    phone_index bytea NOT NULL,
    phone_enc text NOT NULL,
    gender text NOT NULL CHECK (gender IN ('male', 'female', 'unknown')),
    birth_date_enc text NOT NULL,
    assurance text NOT NULL DEFAULT 'ctid-face',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX people_phone_index ON people (phone_index);

-- A device holding a 网证 key pair (SM2); the private key never leaves the device.
CREATE TABLE devices (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL REFERENCES people (id),
    public_key bytea NOT NULL UNIQUE,            -- uncompressed SM2 point 04||X||Y
    platform text NOT NULL,
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_person ON devices (person_id);

-- 网证: one per device; status changes are the status list verifiers fetch.
CREATE TABLE credentials (
    serial text PRIMARY KEY,
    person_id uuid NOT NULL REFERENCES people (id),
    device_id uuid NOT NULL REFERENCES devices (id),
    kid text NOT NULL,
    level text NOT NULL,
    document text NOT NULL,                      -- the signed credential as issued
    salts_enc text NOT NULL,                     -- attribute salts, for the holder's selective disclosure
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    status_reason text NOT NULL DEFAULT '',
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    replaced_by text
);
CREATE INDEX credentials_person ON credentials (person_id);
CREATE INDEX credentials_status_changed ON credentials (status_changed_at);

-- 口令: 8-digit PIN, scrypt-hashed, with a failure counter for lockout.
CREATE TABLE pins (
    person_id uuid PRIMARY KEY REFERENCES people (id),
    hash text NOT NULL,
    failures int NOT NULL DEFAULT 0,
    locked_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Issuer signing keys (SM2), private halves encrypted with the field keyring; several for rotation.
CREATE TABLE issuer_keys (
    kid text PRIMARY KEY,
    public_key bytea NOT NULL,
    private_key_enc text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);

-- App sessions: refresh tokens rotate inside a family; a reused one ends the whole family.
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL REFERENCES people (id),
    device_id uuid REFERENCES devices (id),
    device_label text NOT NULL DEFAULT '',
    acr text NOT NULL,
    refresh_hash bytea NOT NULL UNIQUE,
    refresh_generation int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ended_at timestamptz,
    end_reason text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_person ON sessions (person_id) WHERE ended_at IS NULL;
CREATE TABLE retired_refresh (
    refresh_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES sessions (id)
);

-- Relying parties: apps, portals, verifiers and business systems (shared with the OIDC provider).
CREATE TABLE clients (
    client_id text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('app', 'portal', 'verifier', 'business')),
    zone text NOT NULL DEFAULT 'internet' CHECK (zone IN ('internet', 'government', 'police')),
    secret_hash text,
    auth_method text NOT NULL DEFAULT 'client_secret_basic',
    redirect_uris text[] NOT NULL DEFAULT '{}',
    entitlements text[] NOT NULL DEFAULT '{}',
    sector text NOT NULL,
    min_acr text NOT NULL DEFAULT 'wz',
    jwks jsonb,
    id_token_alg text NOT NULL DEFAULT 'ES256',
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Legal persons (enterprises) by unified social credit code, their handlers, and agents for elders.
CREATE TABLE enterprises (
    id uuid PRIMARY KEY,
    uscc text NOT NULL UNIQUE,
    name text NOT NULL,
    representative_id uuid NOT NULL REFERENCES people (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE handlers (
    id uuid PRIMARY KEY,
    enterprise_id uuid NOT NULL REFERENCES enterprises (id),
    person_id uuid NOT NULL REFERENCES people (id),
    scopes text[] NOT NULL,
    valid_until timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    UNIQUE (enterprise_id, person_id)
);
CREATE TABLE agents (
    id uuid PRIMARY KEY,
    elder_id uuid NOT NULL REFERENCES people (id),
    agent_id uuid NOT NULL REFERENCES people (id),
    scopes text[] NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK (elder_id <> agent_id)
);
