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
CREATE TRIGGER ledger_archives_no_update BEFORE UPDATE ON ledger_archives
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER ledger_archives_no_delete BEFORE DELETE ON ledger_archives
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;

-- Only entries an archive holds may leave the ledger.
DROP TRIGGER ledger_entries_no_delete;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
WHEN OLD.seq > (SELECT COALESCE(MAX(last_seq), 0) FROM ledger_archives)
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: only archived entries leave it'); END;
