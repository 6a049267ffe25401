-- ECDSA P-256 (PAdES with ECDSA): an 'EC' issuing CA and 'EC' certificates beside SM2 and RSA.
ALTER TABLE cas DROP CONSTRAINT cas_algorithm_check;
ALTER TABLE cas ADD CONSTRAINT cas_algorithm_check CHECK (algorithm IN ('SM2', 'RSA', 'EC'));
ALTER TABLE certificates DROP CONSTRAINT certificates_algorithm_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_algorithm_check CHECK (algorithm IN ('SM2', 'RSA', 'EC'));
