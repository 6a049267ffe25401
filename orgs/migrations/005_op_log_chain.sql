-- The operation log becomes append-only and hash-chained with SM3 like core.audit_log (see orgs/logs.py, OP_CHAIN,
-- and docs/domains/orgs.md). Rows written before this migration get their sequence numbers here, in (at, id)
-- order; their hashes are computed by the first writer or verifier after it (orgs.logs.seal_legacy: SQL has no
-- SM3), which may fill prev_hash/hash of a row that has none and nothing else.
ALTER TABLE op_log ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;
UPDATE op_log SET seq = n.seq FROM (SELECT id, row_number() OVER (ORDER BY at, id) AS seq FROM op_log) AS n
    WHERE op_log.id = n.id;
ALTER TABLE op_log ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX op_log_seq ON op_log (seq);

-- The chain head; `legacy` is the last sequence number of the rows that still wait for their hashes (0: none).
CREATE TABLE op_log_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL,
    hash bytea NOT NULL,
    legacy bigint NOT NULL DEFAULT 0
);
INSERT INTO op_log_head (seq, hash, legacy)
    SELECT count(*), '\x0000000000000000000000000000000000000000000000000000000000000000', count(*) FROM op_log;

-- Archived months: rows older than the online window move here (same columns), chain hashes and all, so the chain
-- is verified across the cut; op_log_archives holds each month's first and last sequence numbers and hashes.
CREATE TABLE op_log_archive (LIKE op_log INCLUDING DEFAULTS);
ALTER TABLE op_log_archive ADD PRIMARY KEY (seq);
CREATE INDEX op_log_archive_at ON op_log_archive (at);
CREATE TABLE op_log_archives (
    month date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    rows bigint NOT NULL,
    prev_hash bytea NOT NULL,
    last_hash bytea NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);

-- The guard. op_log: no UPDATE but a pending row's chain hashes being filled once; DELETE only of a row whose
-- exact copy (same seq and hash) is in the archive, i.e. through the archive path. The archive: append-only.
CREATE FUNCTION op_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.hash IS NULL AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
       AND (to_jsonb(NEW) - 'prev_hash' - 'hash') = (to_jsonb(OLD) - 'prev_hash' - 'hash') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' AND OLD.hash IS NOT NULL AND EXISTS (
        SELECT 1 FROM orgs.op_log_archive a WHERE a.seq = OLD.seq AND a.hash = OLD.hash
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'op_log is append-only (rows leave only through the archive)';
END $$;
CREATE TRIGGER op_log_no_update BEFORE UPDATE OR DELETE ON op_log FOR EACH ROW EXECUTE FUNCTION op_log_guard();

CREATE FUNCTION op_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER op_log_no_truncate BEFORE TRUNCATE ON op_log EXECUTE FUNCTION op_log_immutable();
CREATE TRIGGER op_log_archive_no_update BEFORE UPDATE OR DELETE OR TRUNCATE ON op_log_archive
    FOR EACH STATEMENT EXECUTE FUNCTION op_log_immutable();
CREATE TRIGGER op_log_archives_no_update BEFORE UPDATE OR DELETE OR TRUNCATE ON op_log_archives
    FOR EACH STATEMENT EXECUTE FUNCTION op_log_immutable();
