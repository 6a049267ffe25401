-- Organisations (1+N): the province, its police types, the 13 cities with theirs, counties and stations.
-- `path` is the materialised path of codes (dot-separated) that data scope compares against.
CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    code text NOT NULL UNIQUE CHECK (code ~ '^[0-9a-z-]{2,40}$'),
    name text NOT NULL,
    level text NOT NULL CHECK (level IN ('province', 'city', 'county', 'station')),
    kind text NOT NULL CHECK (kind IN ('bureau', 'police_type', 'station')),
    police_type text,
    region_code text NOT NULL,
    parent_id uuid REFERENCES orgs (id),
    path text NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orgs_path ON orgs (path text_pattern_ops);
CREATE INDEX orgs_parent ON orgs (parent_id, created_at, id);

-- Roles: built-in ones (org_id NULL) and custom roles of one organisation. Permissions are menu/button codes.
CREATE TABLE roles (
    id uuid PRIMARY KEY,
    code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_-]{1,40}$'),
    name text NOT NULL,
    org_id uuid REFERENCES orgs (id),
    builtin boolean NOT NULL DEFAULT false,
    data_scope text NOT NULL CHECK (data_scope IN ('own', 'subtree', 'all')),
    mask_level int NOT NULL DEFAULT 0,           -- sensitive fields up to this level are shown unmasked
    permissions text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_code ON roles (coalesce(org_id, '00000000-0000-0000-0000-000000000000'::uuid), code);

-- Administrator accounts: registration -> review -> sign-in. Phone is SM4-encrypted (core.fieldcrypt).
CREATE TABLE admins (
    id uuid PRIMARY KEY,
    username text NOT NULL UNIQUE,
    display_name text NOT NULL,
    phone_enc text,
    org_id uuid NOT NULL REFERENCES orgs (id),
    org_path text NOT NULL,
    password_hash text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'active', 'rejected', 'disabled')),
    failed_logins int NOT NULL DEFAULT 0,
    locked_until timestamptz,
    totp_secret_enc text,
    totp_enabled boolean NOT NULL DEFAULT false,
    totp_last_step bigint NOT NULL DEFAULT 0,    -- a TOTP code is accepted once
    person_sub text UNIQUE,                      -- bound 苏证通 account (sub at the admin-console client)
    reviewed_by uuid,
    reviewed_at timestamptz,
    review_reason text NOT NULL DEFAULT '',
    version int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admins_org_path ON admins (org_path text_pattern_ops, created_at, id);

CREATE TABLE admin_roles (
    admin_id uuid NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (admin_id, role_id)
);
