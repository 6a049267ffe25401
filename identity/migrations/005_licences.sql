-- 亮证 presentations: each verification QR names one row by its token id (jti); verifying it stamps used_at once,
-- so a replayed QR is refused even after a restart. No personal data here beyond the person's id.
CREATE TABLE licence_presentations (
    id uuid PRIMARY KEY,
    person_id uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('id_card', 'driving_licence', 'residence_permit')),
    purpose text NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    used_by text                                 -- client id (and staff person) that verified it
);
CREATE INDEX licence_presentations_person ON licence_presentations (person_id, issued_at DESC);

-- The verifier role of app users: a person who staffs a verifier client (a hotel desk, a checkpoint) may scan
-- identity codes and licence QRs in the app, with that client's entitlements.
CREATE TABLE verifier_staff (
    person_id uuid PRIMARY KEY REFERENCES people (id) ON DELETE CASCADE,
    client_id text NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    added_at timestamptz NOT NULL DEFAULT now()
);
