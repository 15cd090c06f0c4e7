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

-- Nothing in the ledger is ever changed or removed, whatever role connects: the triggers refuse
-- it even for the table's owner. deploy/postgres-roles.sql also grants the application role
-- only SELECT and INSERT on these tables.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit ledger is append-only';
END
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
