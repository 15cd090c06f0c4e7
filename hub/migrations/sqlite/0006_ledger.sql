-- The data-sharing audit ledger: append-only and hash-chained (see hub/src/domain/ledger.rs).
-- `body` is the entry's canonical JSON, the only content the chain covers; the other columns
-- repeat fields of it for the data bureau's searches.
CREATE TABLE ledger_entries (
    seq                  BIGINT PRIMARY KEY,
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
CREATE INDEX ledger_entries_by_subject ON ledger_entries (data_subject, seq);
CREATE INDEX ledger_entries_by_time ON ledger_entries (recorded_at);

-- Signed checkpoints over the Merkle root of the entries so far.
CREATE TABLE ledger_checkpoints (
    size       BIGINT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    body       TEXT NOT NULL
);

-- Nothing in the ledger is ever changed or removed by the application.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END;
