-- Registration of a new organisation under an existing one, reviewed by the level above (the parent's scope).
CREATE TABLE org_applications (
    id uuid PRIMARY KEY,
    code text NOT NULL CHECK (code ~ '^[0-9a-z-]{2,40}$'),
    name text NOT NULL,
    parent_id uuid NOT NULL REFERENCES orgs (id),
    parent_path text NOT NULL,
    level text NOT NULL,
    kind text NOT NULL,
    police_type text,
    region_code text NOT NULL,
    contact_name_enc text NOT NULL,
    contact_phone_enc text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    reason text NOT NULL DEFAULT '',
    reviewed_by uuid,
    reviewed_at timestamptz,
    org_id uuid REFERENCES orgs (id),
    version int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX org_applications_scope ON org_applications (parent_path text_pattern_ops, created_at, id);
CREATE UNIQUE INDEX org_applications_pending_code ON org_applications (code) WHERE status = 'pending';

-- Uploaded credentials: stored on disk under SZT_VAR_DIR by id (never by the uploaded name), with an SM3 digest.
CREATE TABLE org_documents (
    id uuid PRIMARY KEY,
    application_id uuid NOT NULL REFERENCES org_applications (id),
    filename text NOT NULL,
    content_type text NOT NULL,
    size int NOT NULL,
    sm3 text NOT NULL,
    stored_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX org_documents_application ON org_documents (application_id, created_at);
