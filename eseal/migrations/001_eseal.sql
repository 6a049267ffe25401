-- Electronic seals: our CAs and trusted roots, certificates, seals with their authorisations, business apps,
-- per-user seal passwords and the hash-chained log of signing, verification, certificate and seal events.

-- Key indexes in the signing server handed out to CA, certificate and seal keys (the device holds 1..60000;
-- the low range is left to operators and tests).
CREATE SEQUENCE key_index_seq START 30000 MAXVALUE 60000;
CREATE SEQUENCE seal_code_seq;

-- A CA of ours (key in the signing server) or an outside root we trust; `priority` orders the trust list.
CREATE TABLE cas (
    id text PRIMARY KEY,                         -- e.g. 'sm2-root', 'sm2-issuing', 'rsa-root', 'rsa-issuing'
    algorithm text NOT NULL CHECK (algorithm IN ('SM2', 'RSA')),
    parent_id text REFERENCES cas (id),
    key_index integer,                           -- NULL for outside roots (no key here)
    cert_der bytea NOT NULL,
    priority integer NOT NULL DEFAULT 100,
    trusted boolean NOT NULL DEFAULT true,
    crl_number bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE certificates (
    id uuid PRIMARY KEY,
    serial numeric(20) UNIQUE,                   -- NULL until issued
    subject_kind text NOT NULL CHECK (subject_kind IN ('org', 'person')),
    subject_name text NOT NULL,
    subject_org text NOT NULL DEFAULT '',
    usage text NOT NULL CHECK (usage IN ('sign', 'encrypt')),
    form text NOT NULL CHECK (form IN ('cloud', 'ukey')),
    term text NOT NULL DEFAULT 'fixed' CHECK (term IN ('fixed', 'event')),
    algorithm text NOT NULL CHECK (algorithm IN ('SM2', 'RSA')),
    key_index integer,                           -- cloud: the key in the signing server
    public_key bytea,                            -- ukey: the SPKI the holder registered
    ca_id text REFERENCES cas (id),
    cert_der bytea,
    status text NOT NULL CHECK (status IN ('applied', 'approved', 'rejected', 'issued', 'suspended', 'revoked')),
    days integer NOT NULL DEFAULT 365,
    not_before timestamptz,
    not_after timestamptz,
    revoked_at timestamptz,
    revoke_reason text NOT NULL DEFAULT '',
    applicant text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((form = 'cloud') = (key_index IS NOT NULL) OR status IN ('applied', 'approved', 'rejected'))
);
CREATE INDEX certificates_status ON certificates (status, created_at);

CREATE TABLE seals (
    id uuid PRIMARY KEY,
    code text UNIQUE,                            -- registered unique code, NULL until registration
    kind text NOT NULL CHECK (kind IN ('official', 'contract', 'finance', 'personal')),
    name text NOT NULL,                          -- e.g. 苏州市公安局 / 苏州市公安局合同专用章 / 张三
    org_name text NOT NULL,
    org_path text NOT NULL DEFAULT '',
    region_code text NOT NULL DEFAULT '320000',
    shape text NOT NULL DEFAULT 'round' CHECK (shape IN ('round', 'oval', 'square', 'upload')),
    status text NOT NULL CHECK (status IN ('applied', 'approved', 'rejected', 'made', 'registered', 'published',
                                           'suspended', 'revoked', 'destroyed')),
    image_png bytea,
    ses_seal bytea,
    maker_cert_id uuid REFERENCES certificates (id),
    valid_from timestamptz,
    valid_to timestamptz,
    applicant text NOT NULL DEFAULT '',
    imported boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seals_kind_status ON seals (kind, status);
CREATE INDEX seals_org ON seals (org_name);

-- One seal, several certificates: each may sign with it.
CREATE TABLE seal_certs (
    seal_id uuid NOT NULL REFERENCES seals (id),
    cert_id uuid NOT NULL REFERENCES certificates (id),
    PRIMARY KEY (seal_id, cert_id)
);

-- Who may use a seal: a user (person id / admin username), a business app (APPCode) or a certificate serial.
CREATE TABLE seal_grants (
    seal_id uuid NOT NULL REFERENCES seals (id),
    grantee_kind text NOT NULL CHECK (grantee_kind IN ('user', 'app', 'cert')),
    grantee text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (seal_id, grantee_kind, grantee)
);

CREATE TABLE seal_passwords (
    user_id text PRIMARY KEY,
    hash text NOT NULL,                          -- scrypt$n$r$p$salt$hash
    failures integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Business systems that call the signing API: APPCode + secret (SM4-encrypted at rest).
CREATE TABLE apps (
    code text PRIMARY KEY,
    name text NOT NULL,
    secret_enc text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Signing, verification, certificate and seal events, SM3 hash-chained like core.audit_log.
CREATE TABLE logs (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL CHECK (kind IN ('sign', 'verify', 'cert', 'seal', 'gateway', 'system')),
    actor text NOT NULL DEFAULT '',              -- APPCode, user or admin
    action text NOT NULL,
    seal_code text NOT NULL DEFAULT '',
    cert_serial text NOT NULL DEFAULT '',
    doc_name text NOT NULL DEFAULT '',
    doc_hash text NOT NULL DEFAULT '',
    result text NOT NULL DEFAULT 'ok',
    ip text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}',
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE INDEX logs_kind_at ON logs (kind, at DESC, seq DESC);
CREATE INDEX logs_seal ON logs (seal_code, at DESC) WHERE seal_code <> '';
CREATE INDEX logs_actor ON logs (actor, at DESC);
CREATE INDEX logs_cert ON logs (cert_serial) WHERE cert_serial <> '';
CREATE INDEX logs_doc ON logs (doc_hash) WHERE doc_hash <> '';

CREATE TABLE log_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL,
    hash bytea NOT NULL
);
INSERT INTO log_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Legacy import progress: one row per CSV line handled, so a second run resumes.
CREATE TABLE import_rows (
    source text NOT NULL,
    line integer NOT NULL,
    outcome text NOT NULL,                       -- 'imported' | 'rejected'
    reason text NOT NULL DEFAULT '',
    seal_id uuid,
    PRIMARY KEY (source, line)
);
