-- Entries past their retention go to archive files (see hub/src/audit.rs, Ledger::archive);
-- the database remembers each archive, and the chain goes on from its last hash.
CREATE TABLE ledger_archives (
    first_seq  BIGINT PRIMARY KEY,
    last_seq   BIGINT NOT NULL,
    last_hash  TEXT NOT NULL,
    file_name  TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TRIGGER ledger_archives_append_only BEFORE UPDATE OR DELETE ON ledger_archives
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_archives_no_truncate BEFORE TRUNCATE ON ledger_archives
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Only entries an archive holds may leave the ledger.
CREATE FUNCTION ledger_only_archived_leave() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq > (SELECT COALESCE(MAX(last_seq), 0) FROM ledger_archives) THEN
        RAISE EXCEPTION 'the audit ledger is append-only: only archived entries leave it';
    END IF;
    RETURN OLD;
END
$$;
DROP TRIGGER ledger_entries_append_only ON ledger_entries;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_only_archived_leave();
