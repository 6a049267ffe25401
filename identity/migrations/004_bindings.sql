-- Accounts of the mini-program platforms (a WeChat openid, an Alipay user id) bound to a person after a real-name
-- check. The WeChat session_key never leaves the server: SM4 ciphertext only (core.fieldcrypt).
CREATE TABLE external_accounts (
    id uuid PRIMARY KEY,
    provider text NOT NULL CHECK (provider IN ('wechat', 'alipay')),
    app_id text NOT NULL,
    subject text NOT NULL,                       -- WeChat openid / Alipay user_id
    union_id text NOT NULL DEFAULT '',           -- WeChat unionid / Alipay open_id
    person_id uuid REFERENCES people (id),       -- NULL until bound
    session_key_enc text,
    created_at timestamptz NOT NULL DEFAULT now(),
    bound_at timestamptz,
    last_login_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, app_id, subject)
);
CREATE INDEX external_accounts_person ON external_accounts (person_id) WHERE person_id IS NOT NULL;
