-- The trust material's generation: one counter bumped, in the same transaction, by every statement that changes
-- what a verification trusts or knows (CAs and trusted roots, a CRL published (crl_number), certificates and their
-- status, seals and their status, seal–certificate bindings). Verifiers in every replica read it before each
-- verification and reuse what they built from the trust material (roots, CRLs, chains, seal states) only while it
-- is unchanged, so a revocation changes the very next verification's verdict everywhere.
CREATE TABLE trust_generation (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    n bigint NOT NULL
);
INSERT INTO trust_generation (one, n) VALUES (true, 1);

CREATE FUNCTION bump_trust_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE eseal.trust_generation SET n = n + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER cas_trust_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON cas
    FOR EACH STATEMENT EXECUTE FUNCTION bump_trust_generation();
CREATE TRIGGER certificates_trust_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION bump_trust_generation();
CREATE TRIGGER seals_trust_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON seals
    FOR EACH STATEMENT EXECUTE FUNCTION bump_trust_generation();
CREATE TRIGGER seal_certs_trust_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON seal_certs
    FOR EACH STATEMENT EXECUTE FUNCTION bump_trust_generation();
