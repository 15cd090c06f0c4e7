-- The ledger's position becomes SQLite's rowid (INTEGER PRIMARY KEY): declared BIGINT, it was a
-- second index that every append wrote. The same columns, indexes and guards as before.
CREATE TABLE ledger_entries_by_rowid (
    seq                  INTEGER PRIMARY KEY,
    source_id            TEXT NOT NULL UNIQUE,
    recorded_at          BIGINT NOT NULL,
    kind                 TEXT NOT NULL,
    data_subject         TEXT,
    case_number          TEXT,
    requester_department TEXT NOT NULL,
    provider             TEXT NOT NULL,
    body                 TEXT NOT NULL,
    previous_hash        TEXT NOT NULL,
    hash                 TEXT NOT NULL
);
INSERT INTO ledger_entries_by_rowid
SELECT seq, source_id, recorded_at, kind, data_subject, case_number, requester_department, provider, body, previous_hash, hash
FROM ledger_entries ORDER BY seq;
-- Dropping the table takes its indexes and guards with it; no row is deleted one by one.
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_by_rowid RENAME TO ledger_entries;
CREATE INDEX ledger_entries_by_subject ON ledger_entries (data_subject, seq);
CREATE INDEX ledger_entries_by_time ON ledger_entries (recorded_at);
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
WHEN OLD.seq > (SELECT COALESCE(MAX(last_seq), 0) FROM ledger_archives)
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: only archived entries leave it'); END;
