-- Four-eyes on organisation applications: who submitted one (an administrator signed in when applying, else NULL
-- for a public applicant) and that administrator's organisation; neither reviews it (orgs.scope.four_eyes).
ALTER TABLE org_applications ADD COLUMN submitted_by uuid, ADD COLUMN submitter_org_path text NOT NULL DEFAULT '';

-- The organisation each app's OIDC client belongs to (written when its onboarding is approved), so that the
-- app-integration log rows of the token endpoint and code verification carry the owner's org path and region and
-- every administrative level sees its own apps' calls (orgs.logs).
CREATE TABLE client_orgs (
    client_id text PRIMARY KEY,
    org_path text NOT NULL,
    region_code text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);
