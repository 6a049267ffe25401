-- OpenID Connect provider state that must survive restarts: signing keys, consents, refresh tokens.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri text;
ALTER TABLE clients ADD COLUMN require_pkce boolean NOT NULL DEFAULT true;

-- JOSE signing keys (ES256 by default); private halves encrypted with the field keyring.
CREATE TABLE jwt_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    public_jwk jsonb NOT NULL,
    private_key_enc text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);

-- What each person allowed each client to receive; withdrawing revokes the client's tokens for that person.
CREATE TABLE consents (
    person_id uuid NOT NULL REFERENCES people (id),
    client_id text NOT NULL REFERENCES clients (client_id),
    scopes text[] NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    PRIMARY KEY (person_id, client_id)
);

-- Refresh tokens: rotated on use; a family is everything descending from one authorization code.
CREATE TABLE oidc_refresh (
    token_hash bytea PRIMARY KEY,
    family uuid NOT NULL,
    client_id text NOT NULL REFERENCES clients (client_id),
    person_id uuid NOT NULL REFERENCES people (id),
    scopes text[] NOT NULL,
    acr text NOT NULL,
    sid text NOT NULL,
    auth_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX oidc_refresh_family ON oidc_refresh (family);
CREATE INDEX oidc_refresh_person_client ON oidc_refresh (person_id, client_id);
